// The firehose (broker/firehose.h): trace messages' headers with RabbitMQ 3.10.8's names, order
// and types, and what a traced vhost copies to amq.rabbitmq.trace (client publishes, deliveries
// and gets) and what it does not (the broker's own publishes, trace messages, untraced vhosts).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "broker/firehose.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "broker_test_fakes.h"
#include "common/basic_properties.h"
#include "common/field_table.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::FakeSink;
using testing::make_consumer;
using testing::make_message;

constexpr uint64_t kConn = 1;
const ClientIdentity kAlice{"alice", "127.0.0.1:5000 -> 127.0.0.1:5672", 7};

std::vector<std::string> keys(const FieldTable& t) {
  std::vector<std::string> out;
  for (const auto& [k, v] : t.entries) out.push_back(k);
  return out;
}

std::string tags(const FieldTable& t) {
  std::string out;
  for (const auto& [k, v] : t.entries) out += v.tag();
  return out;
}

std::string str(const FieldTable& t, std::string_view key) {
  const FieldValue* v = t.find(key);
  return v != nullptr && v->as_string() ? std::string(*v->as_string()) : "<missing>";
}

int64_t integer(const FieldTable& t, std::string_view key) {
  const FieldValue* v = t.find(key);
  return v != nullptr && v->as_int() ? *v->as_int() : -999;
}

std::vector<std::string> strings(const FieldTable& t, std::string_view key) {
  std::vector<std::string> out;
  const FieldValue* v = t.find(key);
  if (v == nullptr) return {"<missing>"};
  for (const FieldValue& e : std::get<FieldArray>(v->v)) out.emplace_back(*e.as_string());
  return out;
}

FieldTable headers_of(const Message& m) {
  BasicProperties p;
  Reader r(m.raw_properties());
  EXPECT_TRUE(p.decode(r));
  EXPECT_EQ(p.flags, BasicProperties::kFlagHeaders);  // a trace carries only its headers
  return decode_table(p.headers).value_or(FieldTable{});
}

MessageRef message_with_properties(std::string_view exchange, std::string_view routing_key,
                                   std::string_view body) {
  FieldTable h;
  h.set("h", int32_t(5));
  std::string encoded_headers = encode_table_body(h);
  BasicProperties p;
  p.flags = BasicProperties::kFlagContentType | BasicProperties::kFlagHeaders |
            BasicProperties::kFlagDeliveryMode | BasicProperties::kFlagTimestamp |
            BasicProperties::kFlagReserved;
  p.content_type = "text/plain";
  p.headers = encoded_headers;
  p.delivery_mode = 2;
  p.timestamp = 1700000000;
  p.reserved = "cluster";
  std::string raw;
  Writer w(raw);
  p.encode(w);
  MessageRef m = Message::create(exchange, routing_key, raw, body.size());
  m->append_body(body);
  return m;
}

TEST(FirehoseHeaders, PublishHeadersInRabbitMQsOrderAndTypes) {
  MessageRef m = message_with_properties("amq.direct", "k", "b");
  std::string body = Firehose::publish_headers(*m, "warren@h", "/", kAlice, {"q1", "q2"});
  FieldTable t = decode_table(body).value();
  EXPECT_EQ(keys(t), (std::vector<std::string>{"exchange_name", "routing_keys", "properties",
                                               "node", "vhost", "connection", "channel", "user",
                                               "routed_queues"}));
  EXPECT_EQ(tags(t), "SAFSSSISA");
  EXPECT_EQ(str(t, "exchange_name"), "amq.direct");
  EXPECT_EQ(strings(t, "routing_keys"), (std::vector<std::string>{"k"}));
  EXPECT_EQ(str(t, "node"), "warren@h");
  EXPECT_EQ(str(t, "connection"), "127.0.0.1:5000 -> 127.0.0.1:5672");
  EXPECT_EQ(integer(t, "channel"), 7);
  EXPECT_EQ(str(t, "user"), "alice");
  EXPECT_EQ(strings(t, "routed_queues"), (std::vector<std::string>{"q1", "q2"}));
  // The properties: those set, in reverse spec order, integers as signedint.
  const FieldTable* props = t.find("properties")->as_table();
  ASSERT_NE(props, nullptr);
  EXPECT_EQ(keys(*props), (std::vector<std::string>{"cluster_id", "timestamp", "delivery_mode",
                                                    "headers", "content_type"}));
  EXPECT_EQ(tags(*props), "SIIFS");
  EXPECT_EQ(integer(*props, "timestamp"), 1700000000);
  EXPECT_EQ(integer(*props, "delivery_mode"), 2);
  EXPECT_EQ(integer(*props->find("headers")->as_table(), "h"), 5);
}

TEST(FirehoseHeaders, DeliverHeadersInRabbitMQsOrderAndTypes) {
  MessageRef m = make_message("b", "rk", "");
  FieldTable t = decode_table(Firehose::deliver_headers(*m, "n", "v", true, kAlice)).value();
  EXPECT_EQ(keys(t), (std::vector<std::string>{"exchange_name", "routing_keys", "properties",
                                               "node", "redelivered", "vhost", "connection",
                                               "channel", "user"}));
  EXPECT_EQ(tags(t), "SAFSISSIS");
  EXPECT_EQ(integer(t, "redelivered"), 1);
  EXPECT_TRUE(t.find("properties")->as_table()->empty());
}

class FirehoseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"traces", "q", "q2"}) {
      QueueDeclare d;
      d.name = name;
      ASSERT_TRUE(vh.declare_queue(d, kConn).ok());
    }
    ASSERT_FALSE(vh.bind_queue("traces", std::string(Firehose::kExchange), "#", {}, kConn));
    ASSERT_FALSE(vh.bind_queue("q", "amq.direct", "k", {}, kConn));
    ASSERT_FALSE(vh.bind_queue("q2", "amq.direct", "k", {}, kConn));
  }
  PublishOutcome Publish(MessageRef m, const ClientIdentity* who = &kAlice) {
    PublishRequest r{std::move(m)};
    r.publisher = who;
    return vh.publish(r);
  }
  // The trace messages so far: routing key and headers, in order.
  std::vector<std::pair<std::string, FieldTable>> Traces() {
    std::vector<std::pair<std::string, FieldTable>> out;
    Queue* traces = vh.find_queue("traces");
    while (traces->message_count() > 0) {
      QueuedMessage m = traces->pop();
      EXPECT_EQ(m.msg->exchange(), Firehose::kExchange);
      out.emplace_back(std::string(m.msg->routing_key()), headers_of(*m.msg));
      bodies.emplace_back(m.msg->body());
    }
    return out;
  }

  FakeScheduler sched;
  FakeSink sink;
  std::vector<std::unique_ptr<Consumer>> consumers;
  std::vector<std::string> bodies;
  VHost vh{"/", &sched};
};

TEST_F(FirehoseTest, TraceExchangeIsDeclaredInEveryVHost) {
  Exchange* x = vh.find_exchange(Firehose::kExchange);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->type(), ExchangeType::kTopic);
  EXPECT_TRUE(x->options().durable);
  EXPECT_TRUE(x->options().internal);
  EXPECT_FALSE(vh.publishable_exchange(Firehose::kExchange).ok());  // clients may not publish
  EXPECT_EQ(vh.firehose(), nullptr);  // off by default
}

TEST_F(FirehoseTest, NothingIsTracedWhileOff) {
  Publish(make_message("m", "k", "amq.direct"));
  ASSERT_EQ(vh.find_queue("q")->pop(&kAlice).msg->body(), "m");
  EXPECT_TRUE(Traces().empty());
}

TEST_F(FirehoseTest, PublishIsTracedOnceRoutedWithSortedQueues) {
  vh.start_tracing("warren@test");
  PublishOutcome o = Publish(make_message("hello", "k", "amq.direct"));
  EXPECT_EQ(o.queues, 2u);  // the publish itself is unchanged
  auto t = Traces();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "publish.amq.direct");
  EXPECT_EQ(bodies[0], "hello");
  EXPECT_EQ(str(t[0].second, "node"), "warren@test");
  EXPECT_EQ(str(t[0].second, "vhost"), "/");
  EXPECT_EQ(strings(t[0].second, "routed_queues"), (std::vector<std::string>{"q", "q2"}));
}

TEST_F(FirehoseTest, DefaultExchangeReportsTheRoutingKeyAsItsQueue) {
  vh.start_tracing("n");
  Publish(make_message("a", "no-such-queue", ""));
  Publish(make_message("b", "amq.rabbitmq.reply-to.abc", ""));
  Publish(make_message("c", "x", "amq.fanout"));  // unroutable
  auto t = Traces();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].first, "publish.");
  EXPECT_EQ(strings(t[0].second, "routed_queues"), (std::vector<std::string>{"no-such-queue"}));
  EXPECT_EQ(strings(t[1].second, "routed_queues"), (std::vector<std::string>{}));
  EXPECT_EQ(t[2].first, "publish.amq.fanout");
  EXPECT_EQ(strings(t[2].second, "routed_queues"), (std::vector<std::string>{}));
}

TEST_F(FirehoseTest, BrokerOwnPublishesAreNotTraced) {
  vh.start_tracing("n");
  Publish(make_message("dead letter", "k", "amq.direct"), nullptr);
  EXPECT_TRUE(Traces().empty());
}

TEST_F(FirehoseTest, DeliveriesAndGetsAreTraced) {
  Publish(make_message("one", "k", "amq.direct"));
  Publish(make_message("two", "k", "amq.direct"));
  vh.start_tracing("n");
  QueuedMessage got = vh.find_queue("q")->pop(&kAlice);
  ASSERT_EQ(got.msg->body(), "one");
  auto c = make_consumer("ctag", &sink, 0, kConn);
  Queue* q = vh.find_queue("q");
  c->queue = QueueRef(q);
  q->add_consumer(c.get());
  q->dispatch();
  ASSERT_EQ(sink.bodies(), (std::vector<std::string>{"two"}));
  auto t = Traces();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].first, "deliver.q");
  EXPECT_EQ(bodies[0], "one");
  EXPECT_EQ(str(t[0].second, "user"), "alice");
  EXPECT_EQ(integer(t[0].second, "channel"), 7);
  EXPECT_EQ(integer(t[0].second, "redelivered"), 0);
  EXPECT_EQ(t[1].first, "deliver.q");
  EXPECT_EQ(bodies[1], "two");
  // FakeSink has no identity: empty names, channel 0.
  EXPECT_EQ(str(t[1].second, "user"), "");
  EXPECT_EQ(integer(t[1].second, "channel"), 0);
  // A requeued message is traced again, redelivered.
  std::vector<QueuedMessage> back;
  back.push_back(std::move(sink.deliveries[0].msg));
  q->remove_consumer(c.get());
  q->requeue(std::move(back));
  vh.find_queue("q")->pop(&kAlice);
  t = Traces();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(integer(t[0].second, "redelivered"), 1);
}

TEST_F(FirehoseTest, ConsumingTheFirehoseIsNotTraced) {
  vh.start_tracing("n");
  Publish(make_message("m", "k", "amq.direct"));
  Queue* traces = vh.find_queue("traces");
  ASSERT_EQ(traces->message_count(), 1u);
  QueuedMessage trace = traces->pop(&kAlice);  // would loop if it were traced
  EXPECT_EQ(trace.msg->routing_key(), "publish.amq.direct");
  EXPECT_EQ(traces->message_count(), 0u);
}

TEST_F(FirehoseTest, StopTracing) {
  vh.start_tracing("n");
  vh.stop_tracing();
  EXPECT_EQ(vh.firehose(), nullptr);
  Publish(make_message("m", "k", "amq.direct"));
  vh.find_queue("q")->pop(&kAlice);
  EXPECT_TRUE(Traces().empty());
}

TEST_F(FirehoseTest, LongQueueNamesGiveTruncatedRoutingKeys) {
  std::string name(255, 'n');
  QueueDeclare d;
  d.name = name;
  ASSERT_TRUE(vh.declare_queue(d, kConn).ok());
  Publish(make_message("m", name, ""));
  vh.start_tracing("n");
  vh.find_queue(name)->pop(&kAlice);
  auto t = Traces();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, ("deliver." + name).substr(0, 255));
}

}  // namespace
}  // namespace warren::broker
