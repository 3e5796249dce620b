// Delayed exchanges (x-delayed-message): the 24-byte index, x-delay parsing and the declare
// errors as RabbitMQ's delayed-message plugin has them, routing when due (without delaying
// again), the RAM budget, and recovery of journaled delayed messages.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "amqp/amqp_error.h"
#include "broker/delay_index.h"
#include "broker/delayed_exchange.h"
#include "broker/message_journal.h"
#include "broker/vhost.h"
#include "broker_test_fakes.h"
#include "common/basic_properties.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::table;

std::string Err(const Status& s) {
  if (!s) return "ok";
  amqp::AmqpError e(*s);
  return std::to_string(e.code) + " " + e.text;
}

// -- the index -------------------------------------------------------------------------------

TEST(DelayIndex, PopsByDueTimeThenPublishOrder) {
  DelayIndex index;
  std::mt19937_64 rng(42);
  std::vector<std::pair<uint64_t, uint64_t>> expected;
  for (uint64_t id = 1; id <= 10'000; ++id) {
    uint64_t due = 1'000 + rng() % 500;  // many ties: those must come out in id order
    index.push(DelayEntry(due, id));
    expected.emplace_back(due, id);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<std::pair<uint64_t, uint64_t>> got;
  while (!index.empty()) {
    DelayEntry e = index.pop();
    got.emplace_back(uint64_t{e.due}, uint64_t{e.id});
  }
  EXPECT_EQ(got, expected);
}

TEST(DelayIndex, EntriesAre24BytesAndKeepFullPositions) {
  static_assert(sizeof(DelayEntry) == 24);
  DelayEntry e(DelayEntry::kMaxDue, DelayEntry::kMaxId);
  EXPECT_FALSE(e.on_disk());
  store::Position p{0xFFFFFFFFu, 0xFFFFFFFFu, (1u << 30) - 1};  // the largest record there is
  e.set_position(p);
  EXPECT_EQ(e.position(), p);
  EXPECT_TRUE(e.on_disk());
  EXPECT_EQ(e.due, DelayEntry::kMaxDue);
  EXPECT_EQ(e.id, DelayEntry::kMaxId);
  e.set_position(store::Position{3, 77, 1'234'567});
  EXPECT_EQ(e.position(), (store::Position{3, 77, 1'234'567}));
  e.clear_position();
  EXPECT_FALSE(e.on_disk());
}

TEST(DelayIndex, GivesMemoryBackWhenDrained) {
  DelayIndex index;
  for (uint64_t id = 1; id <= 100'000; ++id) index.push(DelayEntry(id, id));
  EXPECT_GE(index.memory_bytes(), 100'000 * sizeof(DelayEntry));
  while (index.size() > 10) index.pop();
  EXPECT_LT(index.memory_bytes(), 64 * 1024u);
}

TEST(DelayIndex, RemoveIfKeepsHeapOrder) {
  DelayIndex index;
  for (uint64_t id = 1; id <= 1'000; ++id) index.push(DelayEntry(2'000 - id, id));
  EXPECT_EQ(index.remove_if([](const DelayEntry& e) { return e.id % 3 == 0; }), 333u);
  uint64_t last = 0;
  while (!index.empty()) {
    DelayEntry e = index.pop();
    EXPECT_NE(e.id % 3, 0u);
    EXPECT_GE(e.due, last);
    last = e.due;
  }
}

// -- x-delay and x-delayed-type, as the plugin reads them -------------------------------------

TEST(DelayedExchange, XDelayHeaderTypes) {
  auto delay = [](FieldValue v) { return x_delay_of(table({{"x-delay", std::move(v)}})); };
  EXPECT_EQ(x_delay_of({}), std::nullopt);
  EXPECT_EQ(delay(int32_t{5000}), 5000);
  EXPECT_EQ(delay(int64_t{-7}), -7);
  EXPECT_EQ(delay(uint8_t{9}), 9);
  EXPECT_EQ(delay(int8_t{-1}), -1);
  EXPECT_EQ(delay(uint32_t{4294967295u}), 4294967295);
  EXPECT_EQ(delay(std::string("1500")), 1500);
  EXPECT_EQ(delay(std::string("+15")), 15);
  EXPECT_EQ(delay(std::string("-15")), -15);
  EXPECT_EQ(delay(std::string("1.5")), std::nullopt);
  EXPECT_EQ(delay(std::string("")), std::nullopt);
  EXPECT_EQ(delay(std::string("99999999999999999999999")), kMaxDelayMs + 1);
  EXPECT_EQ(delay(2500.9), 2500);
  EXPECT_EQ(delay(-0.5f), 0);
  EXPECT_EQ(delay(Decimal{2, 12345}), 123);
  EXPECT_EQ(delay(true), std::nullopt);
  EXPECT_EQ(delay(Timestamp{10}), std::nullopt);
  EXPECT_EQ(delay(ByteArray{"100"}), std::nullopt);

  EXPECT_FALSE(waits(std::nullopt));
  EXPECT_FALSE(waits(0));
  EXPECT_FALSE(waits(-1));
  EXPECT_TRUE(waits(1));
  EXPECT_TRUE(waits(kMaxDelayMs));
  EXPECT_FALSE(waits(kMaxDelayMs + 1));  // the plugin routes these at once
}

TEST(DelayedExchange, DelayedTypeArgument) {
  auto err = [](FieldTable args) {
    auto r = delayed_routing_type(args);
    return r.ok() ? std::string(exchange_type_name(*r)) : Err(Status(r.error()));
  };
  EXPECT_EQ(err(table({{"x-delayed-type", "topic"}})), "topic");
  EXPECT_EQ(err(table({{"x-delayed-type", ByteArray{"fanout"}}})), "fanout");
  EXPECT_EQ(err({}),
            "406 PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing "
            "exchange type");
  EXPECT_EQ(err(table({{"x-delayed-type", int32_t{1}}})),
            "406 PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing "
            "exchange type");
  EXPECT_EQ(err(table({{"x-delayed-type", "x-delayed-message"}})),
            "406 PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' can't be used for "
            "'x-delayed-type'");
  EXPECT_EQ(err(table({{"x-delayed-type", "nope"}})),
            "503 COMMAND_INVALID - unknown exchange type 'nope'");
}

// -- routing through a vhost -----------------------------------------------------------------

// Raw content-header properties with these headers (and delivery mode 2 when persistent).
std::string properties(const FieldTable& headers, bool persistent = false) {
  BasicProperties p;
  std::string body = encode_table_body(headers);
  if (!headers.empty()) {
    p.flags |= BasicProperties::kFlagHeaders;
    p.headers = body;
  }
  if (persistent) {
    p.flags |= BasicProperties::kFlagDeliveryMode;
    p.delivery_mode = 2;
  }
  std::string out;
  Writer w(out);
  p.encode(w);
  return out;
}

MessageRef message(std::string_view exchange, std::string_view key, std::string_view body,
                   const FieldTable& headers, bool persistent = false) {
  MessageRef m = Message::create(exchange, key, properties(headers, persistent), body.size());
  m->append_body(body);
  if (persistent) m->delivery_mode = 2;
  return m;
}

FieldTable delay(int32_t ms) { return table({{"x-delay", ms}}); }

class DelayedRoutingTest : public ::testing::Test {
 protected:
  void Declare(std::string_view name, std::string_view delayed_type, bool durable = false,
               FieldTable extra = {}) {
    ExchangeDeclare d;
    d.name = name;
    d.type = kDelayedExchangeType;
    d.durable = durable;
    d.arguments = std::move(extra);
    d.arguments.set("x-delayed-type", FieldValue(std::string(delayed_type)));
    ASSERT_EQ(Err(vh->declare_exchange(d)), "ok");
  }
  void Q(std::string_view name) {
    QueueDeclare d;
    d.name = name;
    ASSERT_TRUE(vh->declare_queue(d, 1).ok());
  }
  void Bind(std::string_view q, std::string_view x, std::string_view key,
            const FieldTable& args = {}) {
    ASSERT_EQ(Err(vh->bind_queue(q, x, key, args, 1)), "ok");
  }
  PublishOutcome Publish(MessageRef m, bool mandatory = false) {
    PublishRequest r;
    r.message = std::move(m);
    r.mandatory = mandatory;
    return vh->publish(r);
  }
  DelayStore* Store(std::string_view x) { return vh->find_exchange(x)->delay_store(); }
  // The bodies ready in queue q, taken out.
  std::vector<std::string> Take(std::string_view q) {
    std::vector<std::string> out;
    Queue* queue = vh->find_queue(q);
    while (true) {
      QueuedMessage m = queue->pop();
      if (!m.msg) break;
      out.emplace_back(m.msg->body());
    }
    return out;
  }

  FakeScheduler sched;
  std::unique_ptr<VHost> vh = std::make_unique<VHost>("/", &sched);
};

TEST_F(DelayedRoutingTest, WaitsUntilDueThenRoutesByDelayedTypeInDueOrder) {
  Declare("dx", "topic");
  Q("q");
  Q("other");
  Bind("q", "dx", "a.*");
  Bind("other", "dx", "b.#");
  uint64_t now = steady_now_ms();
  Publish(message("dx", "a.x", "late", delay(3000)));
  Publish(message("dx", "a.x", "early", delay(1000)));
  Publish(message("dx", "a.x", "middle", delay(2000)));
  PublishOutcome o = Publish(message("dx", "a.x", "now", {}));  // no x-delay: routed at once
  EXPECT_EQ(o.queues, 1u);
  EXPECT_EQ(o.delayed, 0u);
  EXPECT_EQ(Take("q"), (std::vector<std::string>{"now"}));
  EXPECT_EQ(Store("dx")->size(), 3u);
  Store("dx")->wake_up_at(now + 500);
  EXPECT_EQ(Take("q"), (std::vector<std::string>{}));
  Store("dx")->wake_up_at(now + 60'000);
  EXPECT_EQ(Take("q"), (std::vector<std::string>{"early", "middle", "late"}));
  EXPECT_EQ(Take("other"), (std::vector<std::string>{}));
  EXPECT_EQ(Store("dx")->size(), 0u);
}

TEST_F(DelayedRoutingTest, OutOfRangeDelaysRouteAtOnce) {
  Declare("dx", "fanout");
  Q("q");
  Bind("q", "dx", "");
  Publish(message("dx", "", "zero", delay(0)));
  Publish(message("dx", "", "negative", delay(-5)));
  Publish(message("dx", "", "too-large", table({{"x-delay", int64_t{4294967296}}})));
  Publish(message("dx", "", "bool", table({{"x-delay", true}})));
  EXPECT_EQ(Take("q"), (std::vector<std::string>{"zero", "negative", "too-large", "bool"}));
  EXPECT_EQ(Store("dx")->size(), 0u);
}

TEST_F(DelayedRoutingTest, MandatoryDelayedIsNotReturnedButUnroutableIs) {
  Declare("dx", "direct");
  PublishOutcome waits = Publish(message("dx", "nowhere", "m", delay(100)), true);
  EXPECT_FALSE(waits.returned);
  EXPECT_EQ(waits.delayed, 1u);
  PublishOutcome at_once = Publish(message("dx", "nowhere", "m", {}), true);
  EXPECT_TRUE(at_once.returned);
}

TEST_F(DelayedRoutingTest, DueMessageIsNotDelayedAgainDownstreamAndKeepsItsExchange) {
  Declare("d1", "fanout");
  Declare("d2", "direct");
  Q("q");
  Bind("q", "d2", "k");
  ASSERT_EQ(Err(vh->bind_exchange("d2", "d1", "", {})), "ok");
  ExchangeDeclare src;
  src.name = "src";
  src.type = "direct";
  ASSERT_EQ(Err(vh->declare_exchange(src)), "ok");
  ASSERT_EQ(Err(vh->bind_exchange("d1", "src", "k", {})), "ok");
  uint64_t now = steady_now_ms();
  PublishOutcome o = Publish(message("src", "k", "via-src", delay(1000)));
  EXPECT_EQ(o.delayed, 1u);  // kept by d1 only; d2 never saw it
  EXPECT_EQ(Store("d1")->size(), 1u);
  EXPECT_EQ(Store("d2")->size(), 0u);
  Store("d1")->wake_up_at(now + 5'000);
  EXPECT_EQ(Store("d2")->size(), 0u);
  QueuedMessage m = vh->find_queue("q")->pop();
  ASSERT_TRUE(m.msg);
  EXPECT_EQ(m.msg->body(), "via-src");
  EXPECT_EQ(m.msg->exchange(), "src");  // as published
}

TEST_F(DelayedRoutingTest, AlternateExchangeOnlyWhenUnroutableWhenDue) {
  ExchangeDeclare ae;
  ae.name = "ae";
  ae.type = "fanout";
  ASSERT_EQ(Err(vh->declare_exchange(ae)), "ok");
  Q("ae-q");
  Bind("ae-q", "ae", "");
  Declare("dx", "direct", false, table({{"alternate-exchange", "ae"}}));
  Q("q");
  Bind("q", "dx", "k");
  uint64_t now = steady_now_ms();
  Publish(message("dx", "k", "routable", delay(100)));
  Publish(message("dx", "nowhere", "unroutable", delay(100)));
  EXPECT_EQ(Take("ae-q"), (std::vector<std::string>{}));
  Store("dx")->wake_up_at(now + 1'000);
  EXPECT_EQ(Take("q"), (std::vector<std::string>{"routable"}));
  EXPECT_EQ(Take("ae-q"), (std::vector<std::string>{"unroutable"}));
}

TEST_F(DelayedRoutingTest, RedeclareComparesTypeNotDelayedType) {
  Declare("dx", "direct");
  Declare("dx", "topic");  // x-delayed-type is not compared (nor applied)
  EXPECT_EQ(vh->find_exchange("dx")->type(), ExchangeType::kDirect);
  ExchangeDeclare d;
  d.name = "dx";
  d.type = "direct";
  EXPECT_EQ(Err(vh->declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'dx' in vhost '/': "
            "received 'direct' but current is ''x-delayed-message''");
  d.name = "amq.direct";
  d.type = kDelayedExchangeType;
  d.arguments = table({{"x-delayed-type", "direct"}});
  EXPECT_EQ(Err(vh->declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in vhost "
            "'/': received ''x-delayed-message'' but current is 'direct'");
}

TEST_F(DelayedRoutingTest, DeletedExchangeDropsItsMessages) {
  Declare("dx", "fanout");
  Q("q");
  Bind("q", "dx", "");
  Publish(message("dx", "", "m", delay(100)));
  Ref<DelayStore> store(Store("dx"));
  ASSERT_EQ(Err(vh->delete_exchange("dx", false)), "ok");
  EXPECT_TRUE(store->detached());
  store->wake_up_at(steady_now_ms() + 10'000);
  EXPECT_EQ(Take("q"), (std::vector<std::string>{}));
}

TEST_F(DelayedRoutingTest, RamBudgetWithoutJournalKeepsEverything) {
  Declare("dx", "fanout");
  Q("q");
  Bind("q", "dx", "");
  for (int i = 0; i < 100; ++i) Publish(message("dx", "", std::to_string(i), delay(10)));
  EXPECT_EQ(Store("dx")->messages_in_ram(), 100u);
  Store("dx")->wake_up_at(steady_now_ms() + 1'000);
  EXPECT_EQ(Take("q").size(), 100u);
  EXPECT_EQ(Store("dx")->messages_in_ram(), 0u);
  EXPECT_EQ(Store("dx")->ram_bytes(), 0u);
}

// -- with a journal: bodies past the budget, and recovery --------------------------------------

class DelayedJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-delayed-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // One broker's worth: a journal, a vhost with a durable delayed fanout exchange "dx" bound to
  // the (transient) queue "q", and what the journal recovered into it.
  struct Instance {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
    std::vector<store::Completion> completions;
    MessageJournal journal{io, [] {},
                           [this](const store::Completion& c) { completions.push_back(c); }};
    FakeScheduler sched;
    std::unique_ptr<VHost> vh;
    size_t adopted = 0;
    DelayStore* store() { return vh->find_exchange("dx")->delay_store(); }
  };
  std::unique_ptr<Instance> open() {
    auto in = std::make_unique<Instance>();
    in->vh = std::make_unique<VHost>("/", &in->sched, nullptr, &in->journal);
    ExchangeDeclare d;
    d.name = "dx";
    d.type = kDelayedExchangeType;
    d.durable = true;
    d.arguments = table({{"x-delayed-type", "fanout"}});
    EXPECT_EQ(Err(in->vh->declare_exchange(d)), "ok");
    QueueDeclare q;
    q.name = "q";
    EXPECT_TRUE(in->vh->declare_queue(q, 1).ok());
    EXPECT_EQ(Err(in->vh->bind_queue("q", "dx", "", {}, 1)), "ok");
    store::MessageStoreOptions opts;
    opts.dir = dir_;
    Instance* raw = in.get();
    auto adopt = [raw](const store::RecoveredMessage& r) {
      if (r.queue_id != DelayStore::kJournalId) return false;
      bool ok = DelayStore::recover(r, [raw](std::string_view vhost, std::string_view x) {
        Exchange* e = vhost == "/" ? raw->vh->find_exchange(x) : nullptr;
        return e ? e->delay_store() : nullptr;
      });
      raw->adopted += ok;
      return ok;
    };
    EXPECT_FALSE(in->journal.open(opts, [](uint64_t) -> Queue* { return nullptr; }, nullptr, adopt));
    return in;
  }
  static void wait_synced(Instance& in, uint64_t seq) {
    in.journal.flush();
    while (in.completions.empty() || in.completions.back().last_seq < seq)
      in.io.run_one_for(std::chrono::seconds(10));
  }
  static PublishOutcome publish(Instance& in, MessageRef m) {
    PublishRequest r;
    r.message = std::move(m);
    return in.vh->publish(r);
  }
  static std::vector<std::string> take(Instance& in) {
    std::vector<std::string> out;
    while (true) {
      QueuedMessage m = in.vh->find_queue("q")->pop();
      if (!m.msg) break;
      out.emplace_back(m.msg->body());
    }
    return out;
  }

  std::string dir_;
};

TEST_F(DelayedJournalTest, PersistentMessagesComeBackDueAtTheSameTimeTransientOnesDoNot) {
  {
    auto in = open();
    PublishOutcome p1 = publish(*in, message("dx", "", "p-late", delay(600'000), true));
    PublishOutcome t = publish(*in, message("dx", "", "t", delay(1'000)));
    PublishOutcome p2 = publish(*in, message("dx", "", "p-early", delay(1'000), true));
    EXPECT_GT(p1.journal_seq, 0u);
    EXPECT_EQ(t.journal_seq, 0u);  // a transient message within the budget is not written
    EXPECT_GT(p2.journal_seq, p1.journal_seq);
    wait_synced(*in, p2.journal_seq);
    EXPECT_FALSE(in->completions.back().error);
    in->journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->adopted, 2u);
  ASSERT_EQ(in->store()->size(), 2u);
  EXPECT_EQ(in->store()->messages_in_ram(), 0u);  // bodies stay on disk until due
  uint64_t now = steady_now_ms();
  in->store()->wake_up_at(now + 5'000);
  std::vector<std::string> got = take(*in);
  EXPECT_EQ(got, (std::vector<std::string>{"p-early"}));
  in->store()->wake_up_at(now + 700'000);
  EXPECT_EQ(take(*in), (std::vector<std::string>{"p-late"}));
  // Delivered, so acked: a third start finds nothing.
  in->journal.flush();
  in->journal.close();
  in.reset();
  auto again = open();
  EXPECT_EQ(again->adopted, 0u);
}

TEST_F(DelayedJournalTest, RecordsOfADeletedExchangeAreAcked) {
  {
    auto in = open();
    PublishOutcome p = publish(*in, message("dx", "", "p", delay(600'000), true));
    wait_synced(*in, p.journal_seq);
    ASSERT_EQ(Err(in->vh->delete_exchange("dx", false)), "ok");
    in->journal.flush();
    in->journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->adopted, 0u);
  EXPECT_EQ(in->store()->size(), 0u);
}

TEST_F(DelayedJournalTest, BodiesPastTheRamBudgetAreReadBackInOrder) {
  auto in = open();
  const size_t n = DelayStore::kRamMessages + 500;
  uint64_t last = 0;
  for (size_t i = 0; i < n; ++i) {
    // Transient and persistent alternately: both kinds go to disk past the budget.
    PublishOutcome o = publish(*in, message("dx", "", "m" + std::to_string(i), delay(10), i % 2));
    last = std::max(last, o.journal_seq);
  }
  wait_synced(*in, last);
  // Synced page-outs left RAM; what is left is within the budget.
  while (in->store()->messages_in_ram() > DelayStore::kRamMessages)
    in->io.run_one_for(std::chrono::seconds(10));
  EXPECT_LE(in->store()->messages_in_ram(), DelayStore::kRamMessages);
  uint64_t later = steady_now_ms() + 1'000;
  while (in->store()->size() > 0) in->store()->wake_up_at(later);  // in batches
  std::vector<std::string> got = take(*in);
  ASSERT_EQ(got.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], "m" + std::to_string(i));
  EXPECT_EQ(in->store()->messages_in_ram(), 0u);
}

}  // namespace
}  // namespace warren::broker
