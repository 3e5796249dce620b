// Queue features at the unit level: priority levels, length limits, x-death construction,
// expiration parsing.
#include <gtest/gtest.h>

#include "broker/dead_letter.h"
#include "broker/ready_messages.h"
#include "broker_test_fakes.h"
#include "common/basic_properties.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::make_message;
using testing::table;

QueuedMessage queued(uint64_t seq, uint8_t priority) {
  QueuedMessage m;
  m.seq = seq;
  m.priority = priority;
  return m;
}

std::vector<uint64_t> drain(ReadyMessages& r) {
  std::vector<uint64_t> out;
  while (!r.empty()) out.push_back(r.take_front().seq);
  return out;
}

TEST(ReadyMessagesTest, HighestPriorityFirstFifoWithinAPriority) {
  ReadyMessages r(255);
  r.push_back(queued(1, 0));
  r.push_back(queued(2, 255));
  r.push_back(queued(3, 64));
  r.push_back(queued(4, 255));
  r.push_back(queued(5, 63));
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(drain(r), (std::vector<uint64_t>{2, 4, 3, 5, 1}));
}

TEST(ReadyMessagesTest, AboveMaxCountsAsMaxAndOneLevelWithoutPriorities) {
  ReadyMessages capped(5);
  EXPECT_EQ(capped.cap(9), 5);
  ReadyMessages plain;
  plain.push_back(queued(1, plain.cap(9)));
  plain.push_back(queued(2, plain.cap(0)));
  EXPECT_EQ(drain(plain), (std::vector<uint64_t>{1, 2}));
}

TEST(ReadyMessagesTest, RequeueMergesIntoEachLevelBySeq) {
  ReadyMessages r(2);
  r.push_back(queued(2, 1));
  r.push_back(queued(5, 1));
  r.push_back(queued(6, 2));
  std::vector<QueuedMessage> back;
  back.push_back(queued(1, 2));
  back.push_back(queued(3, 1));
  back.push_back(queued(4, 0));
  r.merge(back);
  EXPECT_EQ(drain(r), (std::vector<uint64_t>{1, 6, 2, 3, 5, 4}));
}

TEST(ReadyMessagesTest, FindAndEraseBySeqAndPriority) {
  ReadyMessages r(3);
  r.push_back(queued(1, 3));
  r.push_back(queued(2, 1));
  ASSERT_NE(r.find(2, 1), nullptr);
  EXPECT_EQ(r.find(2, 3), nullptr);
  r.erase(1, 3);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(drain(r), (std::vector<uint64_t>{2}));
}

// A journal sync that completes after its message left looks the message up in an empty (and
// higher) level: the lookup must not make that level the front, or take_front() reads an empty
// deque (a crash seen under slow fsyncs in test_priorities_survive_paging_to_disk).
TEST(ReadyMessagesTest, LookupsInAnEmptyLevelLeaveTheFrontAlone) {
  ReadyMessages r(5);
  r.push_back(queued(1, 5));
  r.push_back(queued(2, 1));
  EXPECT_EQ(r.take_front().seq, 1u);  // level 5 is empty now
  EXPECT_EQ(r.find(1, 5), nullptr);
  r.erase(1, 5);
  EXPECT_EQ(r.find(7, 4), nullptr);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r.front().seq, 2u);
  EXPECT_EQ(drain(r), (std::vector<uint64_t>{2}));
}

class QueueLimitsTest : public ::testing::Test {
 protected:
  FakeScheduler sched;
  QueueRef make(FieldTable args) {
    Queue::Options o;
    o.arguments = std::move(args);
    return Queue::create("/", "q", std::move(o), &sched);
  }
};

TEST_F(QueueLimitsTest, DropHeadKeepsTheNewestWithinMaxLength) {
  QueueRef q = make(table({{"x-max-length", int32_t(2)}}));
  for (const char* b : {"a", "b", "c"}) EXPECT_FALSE(q->enqueue(make_message(b)).rejected);
  EXPECT_EQ(q->message_count(), 2u);
  EXPECT_EQ(q->pop().msg->body(), "b");
}

TEST_F(QueueLimitsTest, RejectPublishRefusesOverTheByteLimit) {
  QueueRef q = make(table({{"x-max-length-bytes", int32_t(5)}, {"x-overflow", "reject-publish"}}));
  EXPECT_FALSE(q->enqueue(make_message("abc")).rejected);
  EXPECT_TRUE(q->enqueue(make_message("xyz")).rejected);
  EXPECT_FALSE(q->enqueue(make_message("de")).rejected);
  EXPECT_EQ(q->message_count(), 2u);
}

TEST_F(QueueLimitsTest, PriorityQueueDropsTheHeadTheHighestPriorityFirst) {
  // As RabbitMQ 3.10: drop-head drops the message that would be delivered next.
  QueueRef q = make(table({{"x-max-length", int32_t(2)}, {"x-max-priority", int32_t(9)}}));
  for (auto [body, prio] : {std::pair{"hi", 9}, std::pair{"lo", 1}, std::pair{"mid", 5}}) {
    MessageRef m = make_message(body);
    m->priority = static_cast<uint8_t>(prio);
    q->enqueue(m);
  }
  EXPECT_EQ(q->pop().msg->body(), "mid");
  EXPECT_EQ(q->pop().msg->body(), "lo");
  EXPECT_FALSE(q->pop().msg);
}

FieldTable headers_of(const Message& m) {
  BasicProperties p;
  Reader r(m.raw_properties());
  EXPECT_TRUE(p.decode(r));
  auto t = decode_table(p.headers);
  EXPECT_TRUE(t.has_value());
  return t ? *t : FieldTable{};
}

TEST(DeadLetterTest, FirstDeathWritesXDeathAndFirstDeathHeadersAndDropsExpiration) {
  BasicProperties p;
  p.flags = BasicProperties::kFlagExpiration | BasicProperties::kFlagHeaders;
  p.expiration = "500";
  std::string h = encode_table_body(table({{"keep", int16_t(7)}}));
  p.headers = h;
  std::string raw;
  Writer w(raw);
  p.encode(w);
  MessageRef m = Message::create("orig-x", "rk", raw, 4);
  m->append_body("body");
  MessageRef d = make_dead_letter(*m, DeadLetterReason::kExpired, "q1", "dlx", std::nullopt, 1700000000);
  EXPECT_EQ(d->exchange(), "dlx");
  EXPECT_EQ(d->routing_key(), "rk");
  EXPECT_EQ(d->body(), "body");
  BasicProperties dp;
  Reader r(d->raw_properties());
  ASSERT_TRUE(dp.decode(r));
  EXPECT_FALSE(dp.has_expiration());
  FieldTable hd = headers_of(*d);
  EXPECT_EQ(hd.find("keep")->tag(), 's') << "other headers keep their type";
  EXPECT_EQ(*hd.find("x-first-death-reason")->as_string(), "expired");
  EXPECT_EQ(*hd.find("x-first-death-queue")->as_string(), "q1");
  EXPECT_EQ(*hd.find("x-first-death-exchange")->as_string(), "orig-x");
  const auto& deaths = std::get<FieldArray>(hd.find("x-death")->v);
  ASSERT_EQ(deaths.size(), 1u);
  const FieldTable& e = *deaths[0].as_table();
  EXPECT_EQ(e.find("count")->tag(), 'l');
  EXPECT_EQ(*e.find("count")->as_int(), 1);
  EXPECT_EQ(*e.find("reason")->as_string(), "expired");
  EXPECT_EQ(*e.find("queue")->as_string(), "q1");
  EXPECT_EQ(e.find("time")->tag(), 'T');
  EXPECT_EQ(*e.find("exchange")->as_string(), "orig-x");
  EXPECT_EQ(*e.find("original-expiration")->as_string(), "500");
  const auto& rks = std::get<FieldArray>(e.find("routing-keys")->v);
  ASSERT_EQ(rks.size(), 1u);
  EXPECT_EQ(*rks[0].as_string(), "rk");
}

TEST(DeadLetterTest, RepeatedDeathCountsAndMovesToTheFrontAndCyclesAreDetected) {
  MessageRef m = make_message("b", "rk", "x");
  MessageRef d1 = make_dead_letter(*m, DeadLetterReason::kExpired, "a", "dlx", std::string("to-b"), 1);
  MessageRef d2 = make_dead_letter(*d1, DeadLetterReason::kExpired, "b", "dlx", std::nullopt, 2);
  MessageRef d3 = make_dead_letter(*d2, DeadLetterReason::kExpired, "a", "dlx", std::nullopt, 3);
  EXPECT_EQ(d1->routing_key(), "to-b");
  FieldTable h3 = headers_of(*d3);
  const auto& deaths = std::get<FieldArray>(h3.find("x-death")->v);
  ASSERT_EQ(deaths.size(), 2u);
  EXPECT_EQ(*deaths[0].as_table()->find("queue")->as_string(), "a");
  EXPECT_EQ(*deaths[0].as_table()->find("count")->as_int(), 2);
  EXPECT_EQ(*deaths[1].as_table()->find("queue")->as_string(), "b");
  EXPECT_EQ(*h3.find("x-first-death-queue")->as_string(), "a");
  EXPECT_TRUE(is_death_cycle(*d2, "a"));
  EXPECT_FALSE(is_death_cycle(*d2, "c"));
  MessageRef rejected = make_dead_letter(*d1, DeadLetterReason::kRejected, "b", "dlx", std::nullopt, 2);
  EXPECT_FALSE(is_death_cycle(*rejected, "a")) << "a rejection in the loop is not automatic";
}

TEST(ParseExpirationTest, RabbitMqReasons) {
  int64_t ms = -1;
  std::string why;
  EXPECT_TRUE(parse_expiration("0", &ms, &why));
  EXPECT_EQ(ms, 0);
  // RabbitMQ 3.10's limit is ten years (rabbit_misc:check_expiry), not 2^32-1.
  EXPECT_TRUE(parse_expiration("315360000000", &ms, &why));
  EXPECT_EQ(ms, 315360000000);
  EXPECT_TRUE(parse_expiration("+000000000000000000000007", &ms, &why));
  EXPECT_EQ(ms, 7);
  EXPECT_TRUE(parse_expiration("-0", &ms, &why));
  EXPECT_EQ(ms, 0);
  EXPECT_FALSE(parse_expiration("abc", &ms, &why));
  EXPECT_EQ(why, "no_integer");
  EXPECT_FALSE(parse_expiration("", &ms, &why));
  EXPECT_EQ(why, "no_integer");
  EXPECT_FALSE(parse_expiration(" 5", &ms, &why));
  EXPECT_EQ(why, "no_integer");
  EXPECT_FALSE(parse_expiration("12abc", &ms, &why));
  EXPECT_EQ(why, "{leftover_string,\"abc\"}");
  EXPECT_FALSE(parse_expiration("1\x01", &ms, &why));
  EXPECT_EQ(why, "{leftover_string,[1]}");
  EXPECT_FALSE(parse_expiration("-1", &ms, &why));
  EXPECT_EQ(why, "{value_negative,-1}");
  EXPECT_FALSE(parse_expiration("315360000001", &ms, &why));
  EXPECT_EQ(why, "{value_too_large,315360000001}");
  // ~p wraps a term that does not fit in 80 columns after "invalid expiration '<text>': ".
  EXPECT_FALSE(parse_expiration("99999999999999999999", &ms, &why));
  EXPECT_EQ(why, "{value_too_large,\n" + std::string(44, ' ') + "99999999999999999999}");
}

}  // namespace
}  // namespace warren::broker
