// VHost: pre-declared exchanges, declare/delete/purge/bind/unbind with RabbitMQ's reply codes and
// texts, queue removal (bindings, consumers), exclusive queues of a closing connection,
// auto-delete exchanges, and routing through exchange-to-exchange bindings and alternate exchanges.
//
// Expected error texts are RabbitMQ's (rabbit_channel, rabbit_amqqueue, rabbit_misc,
// rabbit_exchange, rabbit_binding), as a client sees them in channel.close / connection.close.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/field_table.h"
#include "amqp/amqp_error.h"
#include "broker/error.h"
#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::FakeSink;
using testing::make_consumer;
using testing::make_message;
using testing::table;

using Names = std::vector<std::string>;

// "ok", or "<code> <text>" of the error as an AMQP client sees it.
std::string Err(const Status& s) {
  if (!s) return "ok";
  amqp::AmqpError e(*s);
  return std::to_string(e.code) + " " + e.text;
}
template <class T>
std::string Err(OpResult<T> r) {
  return r.ok() ? std::string("ok") : Err(Status(r.error()));
}
bool Hard(const Status& s) { return amqp::AmqpError(*s).hard(); }

constexpr uint64_t kConn1 = 1;
constexpr uint64_t kConn2 = 2;

class BrokerVHostTest : public ::testing::Test {
 protected:
  void X(std::string_view name, std::string_view type, bool auto_delete = false,
         FieldTable args = {}) {
    ExchangeDeclare d;
    d.name = name;
    d.type = type;
    d.auto_delete = auto_delete;
    d.arguments = std::move(args);
    ASSERT_EQ(Err(vh.declare_exchange(d)), "ok") << name;
  }
  void Q(std::string_view name, uint64_t conn = kConn1, bool exclusive = false) {
    QueueDeclare d;
    d.name = name;
    d.exclusive = exclusive;
    ASSERT_EQ(Err(vh.declare_queue(d, conn)), "ok") << name;
  }
  void Bind(std::string_view q, std::string_view x, std::string_view key = "",
            const FieldTable& args = {}, uint64_t conn = kConn1) {
    ASSERT_EQ(Err(vh.bind_queue(q, x, key, args, conn)), "ok") << q << " <- " << x;
  }
  void BindX(std::string_view dest, std::string_view source, std::string_view key = "",
             const FieldTable& args = {}) {
    ASSERT_EQ(Err(vh.bind_exchange(dest, source, key, args)), "ok") << dest << " <- " << source;
  }
  // Names of the queues a publish to exchange x reaches, sorted, repeats kept.
  Names Route(std::string_view x, std::string_view key = "", const FieldTable& headers = {}) {
    Exchange* ex = vh.find_exchange(x);
    EXPECT_NE(ex, nullptr) << x;
    if (ex == nullptr) return {};
    std::vector<Queue*> out;
    vh.route(ex, key, [&]() -> const FieldTable& { return headers; }, out);
    Names names;
    for (Queue* q : out) names.push_back(q->name());
    std::sort(names.begin(), names.end());
    return names;
  }
  Consumer* Consume(std::string_view q, std::string tag, uint64_t conn = kConn1) {
    Queue* queue = vh.find_queue(q);
    EXPECT_NE(queue, nullptr);
    auto c = make_consumer(std::move(tag), &sink, 0, conn);
    c->queue = QueueRef(queue);
    queue->add_consumer(c.get());
    consumers.push_back(std::move(c));
    return consumers.back().get();
  }
  void Publish(std::string_view q, int n) {
    for (int i = 0; i < n; ++i) vh.find_queue(q)->enqueue(make_message("m"));
  }
  ExchangeDeclare XD(std::string_view name, std::string_view type) {
    ExchangeDeclare d;
    d.name = name;
    d.type = type;
    return d;
  }
  QueueDeclare QD(std::string_view name) {
    QueueDeclare d;
    d.name = name;
    return d;
  }

  FakeScheduler sched;
  FakeSink sink;
  std::vector<std::unique_ptr<Consumer>> consumers;  // outlive the vhost (declared before it)
  VHost vh{"/", &sched};
};

// -- pre-declared exchanges ------------------------------------------------------------------------

TEST_F(BrokerVHostTest, PredeclaredExchanges) {
  EXPECT_EQ(vh.name(), "/");
  struct {
    const char* name;
    ExchangeType type;
  } expected[] = {{"", ExchangeType::kDirect},           {"amq.direct", ExchangeType::kDirect},
                  {"amq.fanout", ExchangeType::kFanout}, {"amq.topic", ExchangeType::kTopic},
                  {"amq.headers", ExchangeType::kHeaders}, {"amq.match", ExchangeType::kHeaders}};
  // + amq.rabbitmq.trace, the firehose's (internal: broker_firehose_test.cc).
  EXPECT_EQ(vh.exchanges().size(), std::size(expected) + 1);
  for (const auto& e : expected) {
    Exchange* x = vh.find_exchange(e.name);
    ASSERT_NE(x, nullptr) << e.name;
    EXPECT_EQ(x->name(), e.name);
    EXPECT_EQ(x->type(), e.type) << e.name;
    EXPECT_TRUE(x->options().durable) << e.name;
    EXPECT_FALSE(x->options().auto_delete) << e.name;
    EXPECT_FALSE(x->options().internal) << e.name;
  }
  EXPECT_NE(vh.find_exchange("amq.rabbitmq.trace"), nullptr);
  EXPECT_TRUE(vh.queues().empty());
}

// -- routing -----------------------------------------------------------------------------------------

TEST_F(BrokerVHostTest, DefaultExchangeRoutesByQueueName) {
  Q("q1");
  std::vector<Queue*> out;
  vh.route_default("q1", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], vh.find_queue("q1"));
  out.clear();
  vh.route_default("nope", out);
  EXPECT_TRUE(out.empty());
}

TEST_F(BrokerVHostTest, DirectMultipleBindingsWithTheSameKey) {
  Q("q1");
  Q("q2");
  Q("q3");
  Bind("q1", "amq.direct", "k");
  Bind("q2", "amq.direct", "k");
  Bind("q3", "amq.direct", "other");
  Bind("q1", "amq.direct", "k");  // duplicate: accepted, no effect
  EXPECT_EQ(Route("amq.direct", "k"), (Names{"q1", "q2"}));
  EXPECT_EQ(Route("amq.direct", "other"), (Names{"q3"}));
  EXPECT_EQ(Route("amq.direct", "none"), (Names{}));
  EXPECT_EQ(Route("amq.direct", "k"), (Names{"q1", "q2"})) << "routing again gives the same";
}

TEST_F(BrokerVHostTest, FanoutTopicAndHeaders) {
  Q("q1");
  Q("q2");
  Bind("q1", "amq.fanout", "ignored");
  Bind("q2", "amq.fanout");
  EXPECT_EQ(Route("amq.fanout", "anything"), (Names{"q1", "q2"}));

  Bind("q1", "amq.topic", "a.*");
  Bind("q2", "amq.topic", "a.#");
  EXPECT_EQ(Route("amq.topic", "a.b"), (Names{"q1", "q2"}));
  EXPECT_EQ(Route("amq.topic", "a.b.c"), (Names{"q2"}));
  EXPECT_EQ(Route("amq.topic", "b.a"), (Names{}));

  Bind("q1", "amq.headers", "", table({{"x-match", "any"}, {"a", int32_t(1)}, {"b", int32_t(2)}}));
  Bind("q2", "amq.match", "", table({{"a", int32_t(1)}, {"b", int32_t(2)}}));
  Bind("q2", "amq.headers", "", table({{"a", int32_t(1)}, {"b", int32_t(2)}}));
  EXPECT_EQ(Route("amq.headers", "", table({{"a", int32_t(1)}})), (Names{"q1"}));
  EXPECT_EQ(Route("amq.headers", "", table({{"a", int32_t(1)}, {"b", int64_t(2)}})),
            (Names{"q1", "q2"}));
  EXPECT_EQ(Route("amq.headers", "", table({{"c", int32_t(1)}})), (Names{}));
  EXPECT_EQ(Route("amq.match", "", table({{"b", int32_t(2)}, {"a", int8_t(1)}})), (Names{"q2"}));
}

TEST_F(BrokerVHostTest, ExchangeToExchangeChain) {
  X("x1", "direct");
  X("x2", "fanout");
  Q("q");
  BindX("x2", "x1", "k");
  Bind("q", "x2");
  EXPECT_EQ(Route("x1", "k"), (Names{"q"}));
  EXPECT_EQ(Route("x1", "other"), (Names{}));
  EXPECT_EQ(Route("x2", "whatever"), (Names{"q"}));
  EXPECT_EQ(Err(vh.unbind_exchange("x2", "x1", "k", {})), "ok");
  EXPECT_EQ(Route("x1", "k"), (Names{}));
}

TEST_F(BrokerVHostTest, ExchangeToExchangeDiamondDeliversOnce) {
  X("x1", "fanout");
  X("x2", "fanout");
  X("x3", "fanout");
  X("x4", "fanout");
  Q("q");
  Q("r");
  BindX("x2", "x1");
  BindX("x3", "x1");
  Bind("q", "x2");
  Bind("q", "x3");
  EXPECT_EQ(Route("x1"), (Names{"q"}));
  Bind("q", "x1");  // and directly
  EXPECT_EQ(Route("x1"), (Names{"q"}));
  // Deeper diamond: x2 and x3 both lead to x4.
  BindX("x4", "x2");
  BindX("x4", "x3");
  Bind("r", "x4");
  EXPECT_EQ(Route("x1"), (Names{"q", "r"}));
}

TEST_F(BrokerVHostTest, ExchangeToExchangeCycleTerminates) {
  X("x1", "fanout");
  X("x2", "fanout");
  Q("q");
  BindX("x2", "x1");
  BindX("x1", "x2");
  EXPECT_EQ(Route("x1"), (Names{}));
  Bind("q", "x2");
  EXPECT_EQ(Route("x1"), (Names{"q"}));
  EXPECT_EQ(Route("x2"), (Names{"q"}));
  X("self", "fanout");
  BindX("self", "self");
  Bind("q", "self");
  EXPECT_EQ(Route("self"), (Names{"q"}));
}

TEST_F(BrokerVHostTest, AlternateExchangeOnlyWhenUnroutable) {
  X("ae", "fanout");
  X("x", "direct", false, table({{"alternate-exchange", "ae"}}));
  Q("q");
  Q("unrouted");
  Bind("q", "x", "k");
  Bind("unrouted", "ae");
  EXPECT_EQ(Route("x", "k"), (Names{"q"}));
  EXPECT_EQ(Route("x", "other"), (Names{"unrouted"}));
}

TEST_F(BrokerVHostTest, AlternateExchangeChain) {
  X("ae2", "fanout");
  X("ae1", "direct", false, table({{"alternate-exchange", "ae2"}}));
  X("x", "direct", false, table({{"alternate-exchange", "ae1"}}));
  Q("q1");
  Q("q2");
  Bind("q1", "ae1", "one");
  Bind("q2", "ae2");
  EXPECT_EQ(Route("x", "one"), (Names{"q1"}));
  EXPECT_EQ(Route("x", "two"), (Names{"q2"}));
}

TEST_F(BrokerVHostTest, AlternateExchangeCycleTerminates) {
  X("a", "direct", false, table({{"alternate-exchange", "b"}}));
  X("b", "direct", false, table({{"alternate-exchange", "a"}}));
  X("s", "direct", false, table({{"alternate-exchange", "s"}}));
  X("m", "direct", false, table({{"alternate-exchange", "missing"}}));
  Q("q");
  EXPECT_EQ(Route("a", "k"), (Names{}));
  EXPECT_EQ(Route("b", "k"), (Names{}));
  EXPECT_EQ(Route("s", "k"), (Names{}));
  EXPECT_EQ(Route("m", "k"), (Names{}));
  Bind("q", "b", "k");
  EXPECT_EQ(Route("a", "k"), (Names{"q"}));
  EXPECT_EQ(Route("a", "z"), (Names{}));
}

// RabbitMQ (rabbit_exchange:route1/process_alternate) applies alternate exchanges per exchange
// visited: an exchange's AE is used when that exchange itself has no matching binding, whether it
// was published to or reached through an exchange-to-exchange binding.
TEST_F(BrokerVHostTest, AlternateExchangeOfAnExchangeReachedThroughABinding) {
  X("ae2", "fanout");
  X("x2", "direct", false, table({{"alternate-exchange", "ae2"}}));
  X("x1", "fanout");
  Q("q");
  BindX("x2", "x1");
  Bind("q", "ae2");
  EXPECT_EQ(Route("x1", "k"), (Names{"q"})) << "x2 has no binding for 'k', so its AE applies";
}

TEST_F(BrokerVHostTest, AlternateExchangeNotUsedWhenTheExchangeRoutedToAnExchange) {
  X("ae", "fanout");
  X("x2", "direct");  // no bindings: drops the message
  X("x1", "fanout", false, table({{"alternate-exchange", "ae"}}));
  Q("q");
  BindX("x2", "x1");
  Bind("q", "ae");
  EXPECT_EQ(Route("x1", "k"), (Names{}))
      << "x1 matched a binding (to x2), so RabbitMQ does not use x1's alternate exchange";
}

// -- auto-delete exchanges ------------------------------------------------------------------------

TEST_F(BrokerVHostTest, AutoDeleteExchangeGoesWithItsLastQueueBindingUnbound) {
  X("ad", "direct", /*auto_delete=*/true);
  Q("q1");
  Q("q2");
  Bind("q1", "ad", "a");
  Bind("q2", "ad", "b");
  EXPECT_EQ(Err(vh.unbind_queue("q1", "ad", "a", {}, kConn1)), "ok");
  EXPECT_NE(vh.find_exchange("ad"), nullptr);
  EXPECT_EQ(Err(vh.unbind_queue("q2", "ad", "nope", {}, kConn1)), "ok");
  EXPECT_NE(vh.find_exchange("ad"), nullptr) << "no binding was removed";
  EXPECT_EQ(Err(vh.unbind_queue("q2", "ad", "b", {}, kConn1)), "ok");
  EXPECT_EQ(vh.find_exchange("ad"), nullptr);
}

TEST_F(BrokerVHostTest, AutoDeleteExchangeGoesWithItsLastBoundQueueDeleted) {
  X("ad", "fanout", true);
  X("keep", "fanout", false);
  Q("q1");
  Q("q2");
  Bind("q1", "ad");
  Bind("q2", "ad");
  Bind("q1", "keep");
  EXPECT_EQ(Err(vh.delete_queue("q1", false, false, kConn1)), "ok");
  EXPECT_NE(vh.find_exchange("ad"), nullptr);
  EXPECT_EQ(Err(vh.delete_queue("q2", false, false, kConn1)), "ok");
  EXPECT_EQ(vh.find_exchange("ad"), nullptr);
  EXPECT_NE(vh.find_exchange("keep"), nullptr) << "not auto-delete";
  EXPECT_FALSE(vh.find_exchange("keep")->has_bindings());
}

TEST_F(BrokerVHostTest, AutoDeleteExchangeGoesWithItsLastExchangeBinding) {
  X("ad", "fanout", true);
  X("dest", "fanout");
  BindX("dest", "ad");
  EXPECT_EQ(Err(vh.unbind_exchange("dest", "ad", "", {})), "ok");
  EXPECT_EQ(vh.find_exchange("ad"), nullptr);

  X("ad", "fanout", true);
  BindX("dest", "ad");
  EXPECT_EQ(Err(vh.delete_exchange("dest", false)), "ok");
  EXPECT_EQ(vh.find_exchange("ad"), nullptr) << "its destination was deleted";
}

TEST_F(BrokerVHostTest, AutoDeleteExchangeWithoutBindingsStays) {
  X("ad", "fanout", true);
  Q("q");
  EXPECT_NE(vh.find_exchange("ad"), nullptr) << "never bound";
  EXPECT_EQ(Err(vh.unbind_queue("q", "ad", "", {}, kConn1)), "ok");
  EXPECT_NE(vh.find_exchange("ad"), nullptr) << "nothing was unbound";
  EXPECT_EQ(Err(vh.delete_queue("q", false, false, kConn1)), "ok");
  EXPECT_NE(vh.find_exchange("ad"), nullptr);
}

// An auto-delete cascade: deleting q removes the last binding of A, whose deletion removes the
// last binding of B (B -> A), while B is also a source that lost its binding to q. Each scenario
// runs in a child process so a crash fails this test only.
bool AutoDeleteCascadeAfterQueueDeletion(int i) {
  FakeScheduler sched;
  VHost vh("/", &sched);
  std::string a = "A" + std::to_string(i), b = "B" + std::to_string(i);
  for (const std::string& n : {a, b}) {
    ExchangeDeclare d;
    d.name = n;
    d.type = "fanout";
    d.auto_delete = true;
    if (vh.declare_exchange(d)) return false;
  }
  QueueDeclare qd;
  qd.name = "q";
  if (!vh.declare_queue(qd, 1).ok()) return false;
  if (vh.bind_queue("q", a, "", {}, 1) || vh.bind_queue("q", b, "", {}, 1)) return false;
  if (vh.bind_exchange(a, b, "", {})) return false;
  if (!vh.delete_queue("q", false, false, 1).ok()) return false;
  return vh.find_exchange(a) == nullptr && vh.find_exchange(b) == nullptr;
}

bool AutoDeleteCascadeAfterExchangeDeletion(int i) {
  FakeScheduler sched;
  VHost vh("/", &sched);
  std::string a = "A" + std::to_string(i), b = "B" + std::to_string(i), x = "X" + std::to_string(i);
  for (const std::string& n : {a, b, x}) {
    ExchangeDeclare d;
    d.name = n;
    d.type = "fanout";
    d.auto_delete = n != x;
    if (vh.declare_exchange(d)) return false;
  }
  if (vh.bind_exchange(x, a, "", {}) || vh.bind_exchange(x, b, "", {}) ||
      vh.bind_exchange(a, b, "", {}))
    return false;
  if (vh.delete_exchange(x, false)) return false;
  return vh.find_exchange(a) == nullptr && vh.find_exchange(b) == nullptr &&
         vh.find_exchange(x) == nullptr;
}

TEST(BrokerVHostCascadeTest, AutoDeleteCascadeAfterQueueDeletion) {
  EXPECT_EXIT(
      {
        int bad = 0;
        for (int i = 0; i < 64; ++i) bad += !AutoDeleteCascadeAfterQueueDeletion(i);
        std::exit(bad == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(BrokerVHostCascadeTest, AutoDeleteCascadeAfterExchangeDeletion) {
  EXPECT_EXIT(
      {
        int bad = 0;
        for (int i = 0; i < 64; ++i) bad += !AutoDeleteCascadeAfterExchangeDeletion(i);
        std::exit(bad == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// -- exchange.declare ---------------------------------------------------------------------------

TEST_F(BrokerVHostTest, DeclareExchangeCreatesAndRedeclares) {
  ExchangeDeclare d = XD("x", "topic");
  d.durable = true;
  d.internal = true;
  d.arguments = table({{"alternate-exchange", "ae"}, {"other", int32_t(1)}});
  EXPECT_EQ(Err(vh.declare_exchange(d)), "ok");
  Exchange* x = vh.find_exchange("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->type(), ExchangeType::kTopic);
  EXPECT_TRUE(x->options().durable);
  EXPECT_TRUE(x->options().internal);
  EXPECT_EQ(x->alternate_exchange(), "ae");
  d.arguments = table({{"alternate-exchange", "ae"}, {"other", int32_t(2)}});
  EXPECT_EQ(Err(vh.declare_exchange(d)), "ok") << "only alternate-exchange is compared";
  EXPECT_EQ(vh.find_exchange("x"), x);
}

TEST_F(BrokerVHostTest, DeclareExchangeDefaultIsRefused) {
  EXPECT_EQ(Err(vh.declare_exchange(XD("", "direct"))),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
  ExchangeDeclare d = XD("", "direct");
  d.passive = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
}

TEST_F(BrokerVHostTest, DeclareExchangePassive) {
  ExchangeDeclare d = XD("nx", "direct");
  d.passive = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)), "404 NOT_FOUND - no exchange 'nx' in vhost '/'");
  EXPECT_EQ(vh.find_exchange("nx"), nullptr) << "passive never creates";
  d = XD("amq.direct", "fanout");  // passive ignores type and flags
  d.passive = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)), "ok");
}

TEST_F(BrokerVHostTest, DeclareExchangeReservedPrefix) {
  EXPECT_EQ(Err(vh.declare_exchange(XD("amq.foo", "direct"))),
            "403 ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'");
  EXPECT_EQ(vh.find_exchange("amq.foo"), nullptr);
  // Redeclaring an existing amq.* exchange equivalently is fine.
  ExchangeDeclare d = XD("amq.direct", "direct");
  d.durable = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)), "ok");
}

// RabbitMQ 3.x: 503 COMMAND_INVALID (a connection error); 4.x answers 406 PRECONDITION_FAILED
// with the same text.
TEST_F(BrokerVHostTest, DeclareExchangeUnknownType) {
  Status s = vh.declare_exchange(XD("x", "x-unknown"));
  EXPECT_EQ(Err(s), "503 COMMAND_INVALID - unknown exchange type 'x-unknown'");
  ASSERT_TRUE(s);
  EXPECT_TRUE(Hard(s));
  EXPECT_EQ(vh.find_exchange("x"), nullptr);
  X("y", "direct");
  EXPECT_EQ(Err(vh.declare_exchange(XD("y", "bogus"))),
            "503 COMMAND_INVALID - unknown exchange type 'bogus'");
}

TEST_F(BrokerVHostTest, DeclareExchangeInequivalentFlags) {
  X("x", "direct");
  EXPECT_EQ(Err(vh.declare_exchange(XD("x", "fanout"))),
            "406 PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': "
            "received 'fanout' but current is 'direct'");
  ExchangeDeclare d = XD("x", "direct");
  d.durable = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': "
            "received 'true' but current is 'false'");
  d = XD("x", "direct");
  d.auto_delete = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x' in vhost "
            "'/': received 'true' but current is 'false'");
  d = XD("x", "direct");
  d.internal = true;
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x' in vhost '/': "
            "received 'true' but current is 'false'");
  d = XD("amq.topic", "topic");
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'amq.topic' in "
            "vhost '/': received 'false' but current is 'true'");
  Status s = vh.declare_exchange(XD("x", "fanout"));
  ASSERT_TRUE(s);
  EXPECT_FALSE(Hard(s)) << "406 closes the channel only";
}

TEST_F(BrokerVHostTest, DeclareExchangeAlternateExchangeEquivalence) {
  X("x", "direct", false, table({{"alternate-exchange", "ae1"}}));
  ExchangeDeclare d = XD("x", "direct");
  d.arguments = table({{"alternate-exchange", "ae1"}});
  EXPECT_EQ(Err(vh.declare_exchange(d)), "ok");
  d.arguments = table({{"alternate-exchange", "ae2"}});
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in "
            "vhost '/': received 'ae2' but current is 'ae1'");
}

TEST_F(BrokerVHostTest, DeclareExchangeAlternateExchangeAddedOrDropped) {
  X("x", "direct", false, table({{"alternate-exchange", "ae1"}}));
  X("y", "direct");
  EXPECT_EQ(Err(vh.declare_exchange(XD("x", "direct"))),
            "406 PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in "
            "vhost '/': received none but current is the value 'ae1' of type 'longstr'");
  ExchangeDeclare d = XD("y", "direct");
  d.arguments = table({{"alternate-exchange", "ae1"}});
  EXPECT_EQ(Err(vh.declare_exchange(d)),
            "406 PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'y' in "
            "vhost '/': received the value 'ae1' of type 'longstr' but current is none");
}

// -- exchange.delete ------------------------------------------------------------------------------

TEST_F(BrokerVHostTest, DeleteExchangeErrors) {
  EXPECT_EQ(Err(vh.delete_exchange("", false)),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
  EXPECT_EQ(Err(vh.delete_exchange("amq.direct", false)),
            "403 ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
            "allowed");
  EXPECT_EQ(Err(vh.delete_exchange("amq.nonexistent", true)),
            "403 ACCESS_REFUSED - deletion of system exchange 'amq.nonexistent' in vhost '/' not "
            "allowed");
  EXPECT_NE(vh.find_exchange("amq.direct"), nullptr);
  EXPECT_EQ(Err(vh.delete_exchange("missing", false)), "ok");
  EXPECT_EQ(Err(vh.delete_exchange("missing", true)), "ok");
}

TEST_F(BrokerVHostTest, DeleteExchangeIfUnused) {
  X("x", "direct");
  Q("q");
  Bind("q", "x", "k");
  EXPECT_EQ(Err(vh.delete_exchange("x", true)),
            "406 PRECONDITION_FAILED - exchange 'x' in vhost '/' in use");
  EXPECT_NE(vh.find_exchange("x"), nullptr);
  EXPECT_EQ(Err(vh.unbind_queue("q", "x", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Err(vh.delete_exchange("x", true)), "ok");
  EXPECT_EQ(vh.find_exchange("x"), nullptr);
  // Being the destination of a binding does not make an exchange "in use".
  X("dest", "fanout");
  BindX("dest", "amq.fanout");
  EXPECT_EQ(Err(vh.delete_exchange("dest", true)), "ok");
  EXPECT_FALSE(vh.find_exchange("amq.fanout")->has_bindings());
}

TEST_F(BrokerVHostTest, DeleteExchangeRemovesBindingsBothWays) {
  X("src", "fanout");
  X("mid", "fanout");
  Q("q");
  BindX("mid", "src");
  Bind("q", "mid");
  EXPECT_EQ(Route("src"), (Names{"q"}));
  EXPECT_EQ(Err(vh.delete_exchange("mid", false)), "ok");
  EXPECT_EQ(vh.find_exchange("mid"), nullptr);
  EXPECT_FALSE(vh.find_exchange("src")->has_bindings());
  EXPECT_EQ(Route("src"), (Names{}));
  X("mid", "fanout");  // a new exchange of the same name starts without bindings
  EXPECT_EQ(Route("mid"), (Names{}));
}

// -- queue.declare ----------------------------------------------------------------------------------

TEST_F(BrokerVHostTest, DeclareQueueCreatesAndReportsCounts) {
  QueueDeclare d = QD("q");
  d.durable = true;
  d.arguments = table({{"x-message-ttl", int32_t(1000)}});
  auto r = vh.declare_queue(d, kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "q");
  EXPECT_EQ(r->message_count, 0u);
  EXPECT_EQ(r->consumer_count, 0u);
  Queue* q = vh.find_queue("q");
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(q->durable());
  EXPECT_FALSE(q->exclusive());
  EXPECT_EQ(q->vhost(), "/");
  Publish("q", 3);
  Consume("q", "c1");
  auto again = vh.declare_queue(d, kConn2);
  ASSERT_TRUE(again.ok()) << Err(again);
  EXPECT_EQ(again->message_count, 3u);
  EXPECT_EQ(again->consumer_count, 1u);
  QueueDeclare p = QD("q");
  p.passive = true;  // flags and arguments are ignored
  auto passive = vh.declare_queue(p, kConn2);
  ASSERT_TRUE(passive.ok()) << Err(passive);
  EXPECT_EQ(passive->name, "q");
  EXPECT_EQ(passive->message_count, 3u);
  EXPECT_EQ(passive->consumer_count, 1u);
  EXPECT_EQ(vh.find_queue("q"), q);
}

TEST_F(BrokerVHostTest, DeclareQueueServerNamed) {
  auto a = vh.declare_queue(QD(""), kConn1);
  auto b = vh.declare_queue(QD(""), kConn1);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->name, b->name);
  for (const std::string& n : {a->name, b->name}) {
    ASSERT_EQ(n.rfind("amq.gen-", 0), 0u) << n;
    EXPECT_EQ(n.size(), 8u + 22u) << n;  // 16 random bytes, base64url without padding
    EXPECT_EQ(n.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                  8),
              std::string::npos)
        << n;
    EXPECT_NE(vh.find_queue(n), nullptr);
  }
  // The generated name is usable passively, but not for a non-passive redeclare (reserved prefix).
  QueueDeclare p = QD(a->name);
  p.passive = true;
  EXPECT_EQ(Err(vh.declare_queue(p, kConn1)), "ok");
  EXPECT_EQ(Err(vh.declare_queue(QD(a->name), kConn1)),
            "403 ACCESS_REFUSED - queue name '" + a->name + "' contains reserved prefix 'amq.*'");
}

TEST_F(BrokerVHostTest, DeclareQueueReservedPrefix) {
  EXPECT_EQ(Err(vh.declare_queue(QD("amq.q"), kConn1)),
            "403 ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'");
  EXPECT_EQ(vh.find_queue("amq.q"), nullptr);
}

TEST_F(BrokerVHostTest, DeclareQueuePassiveMissing) {
  QueueDeclare p = QD("q");
  p.passive = true;
  EXPECT_EQ(Err(vh.declare_queue(p, kConn1)), "404 NOT_FOUND - no queue 'q' in vhost '/'");
  EXPECT_EQ(vh.find_queue("q"), nullptr);
}

constexpr const char* kLocked =
    "405 RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It "
    "could be originally declared on another connection or the exclusive property value does not "
    "match that of the original declaration.";

TEST_F(BrokerVHostTest, DeclareQueueExclusiveOwnerChecks) {
  QueueDeclare ex = QD("q");
  ex.exclusive = true;
  ASSERT_EQ(Err(vh.declare_queue(ex, kConn1)), "ok");
  Queue* q = vh.find_queue("q");
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(q->exclusive());
  EXPECT_EQ(q->owner_connection(), kConn1);

  EXPECT_EQ(Err(vh.declare_queue(ex, kConn1)), "ok") << "the owner may redeclare";
  EXPECT_EQ(Err(vh.declare_queue(ex, kConn2)), kLocked);
  EXPECT_EQ(Err(vh.declare_queue(QD("q"), kConn2)), kLocked);
  EXPECT_EQ(Err(vh.declare_queue(QD("q"), kConn1)), kLocked)
      << "the exclusive property does not match the original declaration";
  QueueDeclare p = QD("q");
  p.passive = true;
  EXPECT_EQ(Err(vh.declare_queue(p, kConn1)), "ok");
  EXPECT_EQ(Err(vh.declare_queue(p, kConn2)), kLocked);
  // Exclusivity is checked before the other properties.
  QueueDeclare durable = ex;
  durable.durable = true;
  EXPECT_EQ(Err(vh.declare_queue(durable, kConn2)), kLocked);
}

TEST_F(BrokerVHostTest, DeclareQueueExclusiveOverANonExclusiveQueue) {
  Q("q");
  QueueDeclare ex = QD("q");
  ex.exclusive = true;
  EXPECT_EQ(Err(vh.declare_queue(ex, kConn1)), kLocked);
  EXPECT_FALSE(vh.find_queue("q")->exclusive());
}

TEST_F(BrokerVHostTest, DeclareQueueInequivalentFlags) {
  Q("q");
  QueueDeclare d = QD("q");
  d.durable = true;
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': "
            "received 'true' but current is 'false'");
  d = QD("q");
  d.auto_delete = true;
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q' in vhost '/': "
            "received 'true' but current is 'false'");
  d = QD("durable");
  d.durable = true;
  d.auto_delete = true;
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  d.durable = false;
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'durable' in vhost "
            "'/': received 'false' but current is 'true'");
}

// RabbitMQ's queue.declare computes Durable = durable andalso not exclusive: an exclusive queue is
// never durable, so the durable flag of an exclusive (re)declaration does not matter.
TEST_F(BrokerVHostTest, DeclareQueueExclusiveQueuesIgnoreTheDurableFlag) {
  QueueDeclare d = QD("q");
  d.exclusive = true;
  d.durable = true;
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  d.durable = false;
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  EXPECT_FALSE(vh.find_queue("q")->durable());
}

TEST_F(BrokerVHostTest, DeclareQueueArgumentsEquivalence) {
  QueueDeclare d = QD("q");
  d.arguments = table({{"x-message-ttl", int32_t(1000)}, {"x-custom", "a"}});
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  d.arguments = table({{"x-message-ttl", int64_t(1000)}, {"x-custom", "b"}});
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)), "ok")
      << "integers compare by value whatever their width; x-custom is not compared";
  d.arguments = table({{"x-message-ttl", int32_t(2000)}});
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost "
            "'/': received '2000' but current is '1000'");
}

TEST_F(BrokerVHostTest, DeclareQueueStringArgumentMismatchText) {
  QueueDeclare d = QD("q");
  d.arguments = table({{"x-dead-letter-exchange", "dlx1"}});
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  d.arguments = table({{"x-dead-letter-exchange", "dlx2"}});
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' in "
            "vhost '/': received 'dlx2' but current is 'dlx1'");
}

TEST_F(BrokerVHostTest, DeclareQueueArgumentAddedOrDroppedText) {
  QueueDeclare d = QD("q");
  d.arguments = table({{"x-message-ttl", int32_t(1000)}});
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  EXPECT_EQ(Err(vh.declare_queue(QD("q"), kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost "
            "'/': received none but current is the value '1000' of type 'signedint'");
  Q("r");
  d.name = "r";
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)),
            "406 PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'r' in vhost "
            "'/': received the value '1000' of type 'signedint' but current is none");
}

// RabbitMQ (rabbit_misc:assert_field_equivalence, rabbitmq-common#341): a classic queue declared
// without x-queue-type is equivalent to one declared with x-queue-type = classic.
TEST_F(BrokerVHostTest, DeclareQueueExplicitClassicTypeIsEquivalentToNone) {
  Q("q");
  QueueDeclare d = QD("q");
  d.arguments = table({{"x-queue-type", "classic"}});
  EXPECT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  d.name = "typed";
  ASSERT_EQ(Err(vh.declare_queue(d, kConn1)), "ok");
  EXPECT_EQ(Err(vh.declare_queue(QD("typed"), kConn1)), "ok");
}


// -- queue.delete / queue.purge / removal -----------------------------------------------------------

TEST_F(BrokerVHostTest, DeleteQueueMissingIsOk) {
  auto r = vh.delete_queue("missing", true, true, kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
}

TEST_F(BrokerVHostTest, DeleteQueueReturnsTheMessageCount) {
  Q("q");
  Publish("q", 4);
  auto r = vh.delete_queue("q", false, false, kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
  EXPECT_EQ(vh.find_queue("q"), nullptr);
  EXPECT_TRUE(vh.queues().empty());
}

TEST_F(BrokerVHostTest, DeleteQueueIfUnused) {
  Q("q");
  Consumer* c = Consume("q", "c1");
  EXPECT_EQ(Err(vh.delete_queue("q", true, false, kConn1)),
            "406 PRECONDITION_FAILED - queue 'q' in vhost '/' in use");
  EXPECT_NE(vh.find_queue("q"), nullptr);
  c->queue->remove_consumer(c);
  EXPECT_EQ(Err(vh.delete_queue("q", true, false, kConn1)), "ok");
  EXPECT_EQ(vh.find_queue("q"), nullptr);
}

TEST_F(BrokerVHostTest, DeleteQueueIfEmpty) {
  Q("q");
  Publish("q", 1);
  EXPECT_EQ(Err(vh.delete_queue("q", false, true, kConn1)),
            "406 PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
  EXPECT_NE(vh.find_queue("q"), nullptr);
  EXPECT_EQ(Err(vh.purge_queue("q", kConn1)), "ok");
  EXPECT_EQ(Err(vh.delete_queue("q", false, true, kConn1)), "ok");
}

// rabbit_amqqueue_process handle_call({delete, IfUnused, IfEmpty, _}): "if IfEmpty and not
// IsEmpty -> not_empty; IfUnused and not IsUnused -> in_use": emptiness is checked first.
TEST_F(BrokerVHostTest, DeleteQueueIfEmptyIsCheckedBeforeIfUnused) {
  Q("q");
  Publish("q", 1);
  Consume("q", "c1");
  EXPECT_EQ(Err(vh.delete_queue("q", true, true, kConn1)),
            "406 PRECONDITION_FAILED - queue 'q' in vhost '/' not empty");
}

TEST_F(BrokerVHostTest, DeleteQueueExclusiveToAnotherConnection) {
  Q("q", kConn1, /*exclusive=*/true);
  EXPECT_EQ(Err(vh.delete_queue("q", false, false, kConn2)), kLocked);
  EXPECT_NE(vh.find_queue("q"), nullptr);
  EXPECT_EQ(Err(vh.delete_queue("q", false, false, kConn1)), "ok");
}

TEST_F(BrokerVHostTest, DeleteQueueCancelsConsumersAndRemovesBindings) {
  Q("q");
  Q("other");
  X("x", "fanout");
  Bind("q", "x");
  Bind("other", "x");
  Bind("q", "amq.direct", "k");
  Consumer* c1 = Consume("q", "c1");
  Consumer* c2 = Consume("q", "c2");
  Consume("other", "c3");
  Publish("q", 2);
  QueueRef keep(vh.find_queue("q"));
  auto r = vh.delete_queue("q", false, false, kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2u);
  EXPECT_EQ(sink.cancellations, 2);
  EXPECT_EQ(sink.cancelled_tags, (Names{"c1", "c2"}));
  EXPECT_TRUE(keep->deleted());
  EXPECT_EQ(keep->consumer_count(), 0u);
  EXPECT_EQ(keep->message_count(), 0u);
  EXPECT_EQ(c1->queue.get(), keep.get());
  EXPECT_EQ(c2->queue.get(), keep.get());
  EXPECT_EQ(Route("x"), (Names{"other"}));
  EXPECT_EQ(Route("amq.direct", "k"), (Names{}));
  EXPECT_FALSE(vh.find_exchange("amq.direct")->has_bindings());
  std::vector<Queue*> out;
  vh.route_default("q", out);
  EXPECT_TRUE(out.empty());
  // A new queue of the same name starts empty, without bindings.
  Q("q");
  EXPECT_EQ(Route("x"), (Names{"other"}));
  EXPECT_NE(vh.find_queue("q"), keep.get());
}

// The queue is deleted while a binding that differs only by arguments exists twice: routing must
// not hand out the deleted queue afterwards.
TEST_F(BrokerVHostTest, DeleteQueueBoundTwiceWithDifferentArguments) {
  Q("q");
  Q("survivor");
  Bind("q", "amq.direct", "k");
  Bind("q", "amq.direct", "k", table({{"a", int32_t(1)}}));
  Bind("survivor", "amq.direct", "k");
  QueueRef keep(vh.find_queue("q"));  // keeps the object alive, so the check below is safe
  ASSERT_EQ(Err(vh.delete_queue("q", false, false, kConn1)), "ok");
  EXPECT_EQ(vh.find_exchange("amq.direct")->bindings().size(), 1u);
  EXPECT_EQ(Route("amq.direct", "k"), (Names{"survivor"}))
      << "the deleted queue is still in the direct exchange's routing index";
}

TEST_F(BrokerVHostTest, RemoveQueueOfAnotherVHostObjectIsIgnored) {
  Q("q");
  QueueRef stranger = Queue::create("/", "q", {}, &sched);
  vh.remove_queue(stranger.get());
  EXPECT_NE(vh.find_queue("q"), nullptr);
  EXPECT_NE(vh.find_queue("q"), stranger.get());
  EXPECT_FALSE(vh.find_queue("q")->deleted());
}

TEST_F(BrokerVHostTest, PurgeQueue) {
  Q("q");
  Publish("q", 5);
  auto r = vh.purge_queue("q", kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5u);
  EXPECT_EQ(vh.find_queue("q")->message_count(), 0u);
  r = vh.purge_queue("q", kConn1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(Err(vh.purge_queue("missing", kConn1)),
            "404 NOT_FOUND - no queue 'missing' in vhost '/'");
}

TEST_F(BrokerVHostTest, PurgeQueueExclusiveToAnotherConnection) {
  Q("q", kConn1, true);
  Publish("q", 2);
  EXPECT_EQ(Err(vh.purge_queue("q", kConn2)), kLocked);
  EXPECT_EQ(vh.find_queue("q")->message_count(), 2u);
  EXPECT_EQ(Err(vh.purge_queue("q", kConn1)), "ok");
}

TEST_F(BrokerVHostTest, UsableQueue) {
  Q("q");
  Q("e", kConn1, true);
  auto ok = vh.usable_queue("q", kConn2);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, vh.find_queue("q"));
  EXPECT_EQ(Err(vh.usable_queue("nope", kConn1)), "404 NOT_FOUND - no queue 'nope' in vhost '/'");
  EXPECT_TRUE(vh.usable_queue("e", kConn1).ok());
  auto locked = vh.usable_queue("e", kConn2);
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, ErrorCode::kResourceLocked);
  EXPECT_NE(locked.error().text.find("locked queue 'e' in vhost '/'"), std::string::npos);
}

TEST_F(BrokerVHostTest, ConnectionClosedDeletesItsExclusiveQueues) {
  Q("mine1", kConn1, true);
  Q("mine2", kConn1, true);
  Q("theirs", kConn2, true);
  Q("shared", kConn1, false);
  Bind("mine1", "amq.fanout");
  Bind("shared", "amq.fanout");
  Consume("mine1", "c1");
  Consume("theirs", "c2", kConn2);
  Publish("mine2", 3);
  vh.connection_closed(kConn1);
  EXPECT_EQ(vh.find_queue("mine1"), nullptr);
  EXPECT_EQ(vh.find_queue("mine2"), nullptr);
  EXPECT_NE(vh.find_queue("theirs"), nullptr);
  EXPECT_NE(vh.find_queue("shared"), nullptr);
  EXPECT_EQ(sink.cancelled_tags, (Names{"c1"}));
  EXPECT_EQ(Route("amq.fanout"), (Names{"shared"}));
  vh.connection_closed(99);
  EXPECT_EQ(vh.queues().size(), 2u);
}

// -- queue.bind / queue.unbind ---------------------------------------------------------------------

TEST_F(BrokerVHostTest, BindQueueErrors) {
  Q("q");
  X("x", "direct");
  EXPECT_EQ(Err(vh.bind_queue("q", "", "q", {}, kConn1)),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
  EXPECT_EQ(Err(vh.bind_queue("missing", "", "k", {}, kConn1)),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
  EXPECT_EQ(Err(vh.bind_queue("missing", "x", "k", {}, kConn1)),
            "404 NOT_FOUND - no queue 'missing' in vhost '/'");
  EXPECT_EQ(Err(vh.bind_queue("q", "nx", "k", {}, kConn1)),
            "404 NOT_FOUND - no exchange 'nx' in vhost '/'");
  EXPECT_FALSE(vh.find_exchange("x")->has_bindings());
  EXPECT_EQ(Err(vh.bind_queue("q", "x", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Err(vh.bind_queue("q", "x", "k", {}, kConn1)), "ok") << "duplicate bind is ok";
  EXPECT_EQ(vh.find_exchange("x")->bindings().size(), 1u);
}

// rabbit_db_binding: when both ends are missing the source (exchange) is reported first; the
// exclusive-access check runs only once both ends exist.
TEST_F(BrokerVHostTest, BindQueueBothMissingReportsTheExchange) {
  EXPECT_EQ(Err(vh.bind_queue("missing", "nx", "k", {}, kConn1)),
            "404 NOT_FOUND - no exchange 'nx' in vhost '/'");
}

TEST_F(BrokerVHostTest, BindLockedQueueToMissingExchangeReportsTheExchange) {
  Q("q", kConn1, true);
  EXPECT_EQ(Err(vh.bind_queue("q", "nx", "k", {}, kConn2)),
            "404 NOT_FOUND - no exchange 'nx' in vhost '/'");
}

TEST_F(BrokerVHostTest, BindQueueExclusiveToAnotherConnection) {
  Q("q", kConn1, true);
  EXPECT_EQ(Err(vh.bind_queue("q", "amq.direct", "k", {}, kConn2)), kLocked);
  EXPECT_FALSE(vh.find_exchange("amq.direct")->has_bindings());
  EXPECT_EQ(Err(vh.bind_queue("q", "amq.direct", "k", {}, kConn1)), "ok");
}

TEST_F(BrokerVHostTest, BindQueueInvalidHeadersArguments) {
  Q("q");
  Status s = vh.bind_queue("q", "amq.headers", "", table({{"x-match", "some"}}), kConn1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s->text.rfind("Invalid x-match field value ", 0), 0u) << s->text;
  EXPECT_NE(s->text.find("; expected all, any, all-with-x, or any-with-x"), std::string::npos);
  EXPECT_FALSE(vh.find_exchange("amq.headers")->has_bindings());
  s = vh.bind_queue("q", "amq.headers", "", table({{"x-match", int32_t(1)}}), kConn1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s->text.rfind("Invalid x-match field type ", 0), 0u) << s->text;
}

TEST_F(BrokerVHostTest, UnbindQueue) {
  Q("q");
  X("x", "direct");
  Bind("q", "x", "k");
  EXPECT_EQ(Err(vh.unbind_queue("q", "", "q", {}, kConn1)),
            "403 ACCESS_REFUSED - operation not permitted on the default exchange");
  EXPECT_EQ(Err(vh.unbind_queue("missing", "x", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Err(vh.unbind_queue("q", "nx", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Err(vh.unbind_queue("q", "x", "other", {}, kConn1)), "ok");
  EXPECT_EQ(Err(vh.unbind_queue("q", "x", "k", table({{"a", int32_t(1)}}), kConn1)), "ok");
  EXPECT_EQ(Route("x", "k"), (Names{"q"})) << "arguments are part of the binding";
  EXPECT_EQ(Err(vh.unbind_queue("q", "x", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Route("x", "k"), (Names{}));
  EXPECT_EQ(Err(vh.unbind_queue("q", "x", "k", {}, kConn1)), "ok") << "twice is fine";
  EXPECT_NE(vh.find_exchange("x"), nullptr) << "not auto-delete";
}

TEST_F(BrokerVHostTest, UnbindQueueExclusiveToAnotherConnection) {
  Q("q", kConn1, true);
  Bind("q", "amq.direct", "k");
  EXPECT_EQ(Err(vh.unbind_queue("q", "amq.direct", "k", {}, kConn2)), kLocked);
  EXPECT_EQ(Route("amq.direct", "k"), (Names{"q"}));
  EXPECT_EQ(Err(vh.unbind_queue("q", "amq.direct", "k", {}, kConn1)), "ok");
  EXPECT_EQ(Route("amq.direct", "k"), (Names{}));
}

// -- exchange.bind / exchange.unbind -------------------------------------------------------------

TEST_F(BrokerVHostTest, BindExchangeErrors) {
  X("x", "fanout");
  const std::string refused = "403 ACCESS_REFUSED - operation not permitted on the default exchange";
  EXPECT_EQ(Err(vh.bind_exchange("", "x", "", {})), refused);
  EXPECT_EQ(Err(vh.bind_exchange("x", "", "", {})), refused);
  EXPECT_EQ(Err(vh.bind_exchange("nd", "x", "", {})),
            "404 NOT_FOUND - no exchange 'nd' in vhost '/'");
  EXPECT_EQ(Err(vh.bind_exchange("x", "ns", "", {})),
            "404 NOT_FOUND - no exchange 'ns' in vhost '/'");
  EXPECT_FALSE(vh.find_exchange("x")->has_bindings());
  EXPECT_EQ(Err(vh.bind_exchange("x", "amq.direct", "k", {})), "ok");
  EXPECT_EQ(Err(vh.bind_exchange("x", "amq.direct", "k", {})), "ok");
  EXPECT_EQ(vh.find_exchange("amq.direct")->bindings().size(), 1u);
  Status s = vh.bind_exchange("x", "amq.headers", "", table({{"x-match", "bad"}}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kPreconditionFailed);
}

TEST_F(BrokerVHostTest, BindExchangeBothMissingReportsTheSource) {
  EXPECT_EQ(Err(vh.bind_exchange("nd", "ns", "", {})),
            "404 NOT_FOUND - no exchange 'ns' in vhost '/'");
}

TEST_F(BrokerVHostTest, UnbindExchange) {
  X("a", "fanout");
  X("b", "fanout");
  Q("q");
  BindX("b", "a", "k");
  Bind("q", "b");
  const std::string refused = "403 ACCESS_REFUSED - operation not permitted on the default exchange";
  EXPECT_EQ(Err(vh.unbind_exchange("", "a", "k", {})), refused);
  EXPECT_EQ(Err(vh.unbind_exchange("b", "", "k", {})), refused);
  EXPECT_EQ(Err(vh.unbind_exchange("missing", "a", "k", {})), "ok");
  EXPECT_EQ(Err(vh.unbind_exchange("b", "missing", "k", {})), "ok");
  EXPECT_EQ(Err(vh.unbind_exchange("b", "a", "other", {})), "ok");
  EXPECT_EQ(Route("a"), (Names{"q"}));
  EXPECT_EQ(Err(vh.unbind_exchange("b", "a", "k", {})), "ok");
  EXPECT_EQ(Route("a"), (Names{}));
  EXPECT_NE(vh.find_exchange("a"), nullptr);
}

}  // namespace
}  // namespace warren::broker
