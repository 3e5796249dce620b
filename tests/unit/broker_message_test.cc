// Message (one allocation holding exchange, routing key, raw properties and body; body filled in
// chunks) and the intrusive Ref<T> that shares it.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "broker/message.h"
#include "broker/queue.h"
#include "broker/ref.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

// Bytes held by live messages, when Message keeps that count (0 otherwise, so the checks below
// degrade to "does not crash").
template <class M = Message>
uint64_t live_bytes() {
  if constexpr (requires { M::live_bytes(); })
    return M::live_bytes();
  else
    return 0;
}

TEST(BrokerMessageTest, FieldsRoundTrip) {
  const std::string props("\x90\x00\x0atext/plain\x02", 14);  // raw, with a NUL byte
  MessageRef m = Message::create("amq.topic", "a.b.c", props, 11);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->exchange(), "amq.topic");
  EXPECT_EQ(m->routing_key(), "a.b.c");
  EXPECT_EQ(m->raw_properties(), props);
  EXPECT_EQ(m->raw_properties().size(), 14u);
  EXPECT_EQ(m->body_size(), 11u);
  EXPECT_EQ(m->body(), "");
  EXPECT_FALSE(m->complete());
  EXPECT_TRUE(m->append_body("hello world"));
  EXPECT_TRUE(m->complete());
  EXPECT_EQ(m->body(), "hello world");
  // The other fields are untouched by the body copy.
  EXPECT_EQ(m->exchange(), "amq.topic");
  EXPECT_EQ(m->routing_key(), "a.b.c");
  EXPECT_EQ(m->raw_properties(), props);
  EXPECT_EQ(m->delivery_mode, 0);
  EXPECT_EQ(m->priority, 0);
  m->delivery_mode = 2;
  m->priority = 9;
  EXPECT_EQ(m->delivery_mode, 2);
  EXPECT_EQ(m->priority, 9);
}

TEST(BrokerMessageTest, EmptyFieldsAndEmptyBody) {
  MessageRef m = Message::create("", "", "", 0);
  EXPECT_EQ(m->exchange(), "");
  EXPECT_EQ(m->routing_key(), "");
  EXPECT_EQ(m->raw_properties(), "");
  EXPECT_EQ(m->body(), "");
  EXPECT_TRUE(m->complete()) << "a zero-length body is complete at once";
  EXPECT_TRUE(m->append_body(""));
  EXPECT_FALSE(m->append_body("x"));
}

TEST(BrokerMessageTest, LongestShortStrings) {
  // AMQP short strings (exchange, routing key) may be 255 bytes long.
  std::string x(255, 'x'), rk(255, 'k');
  MessageRef m = Message::create(x, rk, "p", 1);
  EXPECT_EQ(m->exchange(), x);
  EXPECT_EQ(m->routing_key(), rk);
  EXPECT_EQ(m->raw_properties(), "p");
  EXPECT_TRUE(m->append_body("b"));
  EXPECT_EQ(m->body(), "b");
}

TEST(BrokerMessageTest, BodyAppendedInChunks) {
  std::string body;
  for (int i = 0; i < 1000; ++i) body += static_cast<char>('a' + i % 26);
  MessageRef m = Message::create("x", "rk", "props", body.size());
  size_t off = 0;
  for (size_t chunk : {1u, 0u, 99u, 400u, 500u}) {
    ASSERT_TRUE(m->append_body(std::string_view(body).substr(off, chunk)));
    off += chunk;
    EXPECT_EQ(m->body(), std::string_view(body).substr(0, off));
    EXPECT_EQ(m->complete(), off == body.size());
  }
  EXPECT_EQ(m->body(), body);
  EXPECT_EQ(m->raw_properties(), "props");
}

TEST(BrokerMessageTest, OverflowIsRejectedAndLeavesTheBodyUnchanged) {
  MessageRef m = Message::create("x", "rk", "", 5);
  EXPECT_FALSE(m->append_body("123456")) << "larger than the announced size";
  EXPECT_EQ(m->body(), "");
  EXPECT_TRUE(m->append_body("123"));
  EXPECT_FALSE(m->append_body("456")) << "3 + 3 > 5";
  EXPECT_EQ(m->body(), "123");
  EXPECT_FALSE(m->complete());
  EXPECT_TRUE(m->append_body("45"));
  EXPECT_TRUE(m->complete());
  EXPECT_FALSE(m->append_body("6"));
  EXPECT_TRUE(m->append_body(""));
  EXPECT_EQ(m->body(), "12345");
}

TEST(BrokerMessageTest, BodyViewStaysValidWhileAnyRefLives) {
  uint64_t before = live_bytes();
  std::string_view body, key;
  MessageRef keep;
  {
    MessageRef m = testing::make_message("payload that is not in SSO range......", "the.key");
    body = m->body();
    key = m->routing_key();
    keep = m;  // second owner
    if (live_bytes() != 0) {
      EXPECT_GT(live_bytes(), before);
    }
  }
  EXPECT_EQ(body, "payload that is not in SSO range......");
  EXPECT_EQ(key, "the.key");
  EXPECT_EQ(keep->body().data(), body.data()) << "shared, not copied";
  keep.reset();
  EXPECT_FALSE(keep);
  EXPECT_EQ(live_bytes(), before) << "the last reference frees the message";
}

TEST(BrokerMessageTest, SharedByManyQueuesAndFreedWhenAllAreDone) {
  uint64_t before = live_bytes();
  testing::FakeScheduler sched;
  std::vector<QueueRef> queues;
  for (int i = 0; i < 3; ++i) queues.push_back(Queue::create("/", "q" + std::to_string(i), {}, &sched));
  {
    MessageRef m = testing::make_message("fanout");
    for (QueueRef& q : queues) q->enqueue(m);
  }
  QueuedMessage got = queues[0]->pop();
  EXPECT_EQ(got.msg->body(), "fanout");
  EXPECT_EQ(queues[1]->pop().msg.get(), got.msg.get()) << "one message object, many queues";
  queues[2]->purge();
  if (live_bytes() != 0) {
    EXPECT_GT(live_bytes(), before);
  }
  got = {};
  EXPECT_EQ(live_bytes(), before);
}

TEST(BrokerMessageTest, ManyCreateDestroyCycles) {
  uint64_t before = live_bytes();
  std::vector<MessageRef> batch;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 100; ++i) {
      std::string body(static_cast<size_t>(i * 7 % 300), static_cast<char>('a' + i % 26));
      MessageRef m = Message::create("ex", std::to_string(i), "props", body.size());
      ASSERT_TRUE(m->append_body(body));
      batch.push_back(m);
      batch.push_back(std::move(m));  // two refs each
    }
    for (size_t i = 0; i < batch.size(); i += 2) {
      ASSERT_EQ(batch[i].get(), batch[i + 1].get());
      ASSERT_EQ(batch[i]->routing_key(), std::to_string(i / 2));
      ASSERT_EQ(batch[i]->body().size(), (i / 2) * 7 % 300);
    }
    batch.clear();
    ASSERT_EQ(live_bytes(), before);
  }
}

// Ref<T> with a counting type: every object is destroyed exactly once, when its last Ref goes.
struct Counted {
  static inline int destroyed = 0;
  static void destroy(Counted* c) {
    ++destroyed;
    delete c;
  }
  uint32_t refs_ = 0;
  int value = 0;
};

TEST(BrokerRefTest, CopiesMovesAndResets) {
  Counted::destroyed = 0;
  {
    Ref<Counted> a(new Counted{0, 7});
    EXPECT_EQ(a->refs_, 1u);
    Ref<Counted> b = a;
    EXPECT_EQ(a->refs_, 2u);
    EXPECT_TRUE(a == b);
    Ref<Counted> c = std::move(b);
    EXPECT_FALSE(b);
    EXPECT_EQ(c->refs_, 2u);
    c = c;  // self-assignment
    EXPECT_EQ(c->refs_, 2u);
    a.reset();
    EXPECT_EQ(Counted::destroyed, 0);
    EXPECT_EQ(c->value, 7);
    EXPECT_EQ((*c).refs_, 1u);
    c = Ref<Counted>(new Counted{0, 8});  // the old object goes
    EXPECT_EQ(Counted::destroyed, 1);
    EXPECT_EQ(c->value, 8);
  }
  EXPECT_EQ(Counted::destroyed, 2);
  Ref<Counted> empty;
  EXPECT_FALSE(empty);
  EXPECT_EQ(empty.get(), nullptr);
  empty.reset();
  Ref<Counted> null_adopted(nullptr);
  EXPECT_FALSE(null_adopted);
  EXPECT_EQ(Counted::destroyed, 2);
}

TEST(BrokerRefTest, ManyOwners) {
  Counted::destroyed = 0;
  std::vector<Ref<Counted>> owners;
  Ref<Counted> first(new Counted{});
  for (int i = 0; i < 1000; ++i) owners.push_back(first);
  EXPECT_EQ(first->refs_, 1001u);
  first.reset();
  owners.resize(1);
  EXPECT_EQ(Counted::destroyed, 0);
  owners.clear();
  EXPECT_EQ(Counted::destroyed, 1);
}

}  // namespace
}  // namespace warren::broker
