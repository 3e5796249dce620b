// Message counters (message_stats.h): what deliveries, gets and acks count on the queue and the
// channel, and how samples turn counters into rates.
#include <gtest/gtest.h>

#include "broker/delivery_tracker.h"
#include "broker/message_stats.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::make_message;
using testing::TrackingSink;

TEST(MessageStatsTest, QueueAndChannelCountPublishDeliverGetAckRedeliver) {
  FakeScheduler sched;
  QueueRef q = Queue::create("/", "q", Queue::Options{}, &sched);
  DeliveryTracker tracker;
  TrackingSink sink{tracker};
  for (int i = 0; i < 4; ++i) q->enqueue(make_message("m"));
  EXPECT_EQ(q->stats().counts.publish, 4u);

  // One get needing an ack, one without.
  uint64_t tag = tracker.delivered(nullptr, q.get(), q->pop(), false);
  tracker.delivered(nullptr, q.get(), q->pop(), true);
  EXPECT_EQ(q->unacked_count(), 1u);
  // The unacked get goes back and comes again, redelivered, to a consumer.
  ASSERT_FALSE(tracker.settle(tag, false, Settlement::kRequeue));
  EXPECT_EQ(q->unacked_count(), 0u);
  auto c = testing::make_consumer("c", &sink, 0);
  c->queue = q;
  q->add_consumer(c.get());
  sched.run(*q);
  ASSERT_EQ(sink.tags.size(), 3u);
  EXPECT_EQ(q->unacked_count(), 3u);
  ASSERT_FALSE(tracker.settle(0, true, Settlement::kAck));
  EXPECT_EQ(q->unacked_count(), 0u);

  for (const MessageStats* s : {&q->stats().counts, &tracker.stats().counts}) {
    EXPECT_EQ(s->get, 1u);
    EXPECT_EQ(s->get_no_ack, 1u);
    EXPECT_EQ(s->deliver, 3u);
    EXPECT_EQ(s->redeliver, 1u);
    EXPECT_EQ(s->ack, 3u);
    EXPECT_EQ(s->deliver_get(), 5u);
  }
  q->remove_consumer(c.get());
}

TEST(MessageStatsTest, RateComesFromTheNewestTwoSamples) {
  ObjectStats s;
  s.sample(1000, 0, 0, 0, 5);
  EXPECT_EQ(s.history(), nullptr) << "an object without traffic keeps no samples";
  s.counts.publish = 50;
  s.sample(6000, 1000, 0, 0, 5);
  ASSERT_NE(s.history(), nullptr);
  auto publish = [](const StatsSample& x) { return x.counts.publish; };
  EXPECT_DOUBLE_EQ(s.history()->rate(publish), 10.0);  // 50 since the tick at 1000 ms
  s.counts.publish = 60;
  s.sample(11000, 6000, 0, 0, 5);
  EXPECT_DOUBLE_EQ(s.history()->rate(publish), 2.0);
  s.sample(16000, 11000, 0, 0, 5);
  EXPECT_DOUBLE_EQ(s.history()->rate(publish), 0.0);
  for (int i = 0; i < 10; ++i) s.sample(20000 + i * 5000, 0, 0, 0, 5);
  EXPECT_EQ(s.history()->samples().size(), 5u) << "bounded";
}

TEST(MessageStatsTest, AddSumsCountersAndSamplesByTick) {
  ObjectStats a, b;
  a.counts.publish = 10;
  a.sample(5000, 0, 2, 0, 10);  // a's history: 0 at 0 ms, 10 at 5000 ms
  a.counts.publish = 30;
  a.sample(10000, 5000, 1, 0, 10);
  b.sample(5000, 0, 0, 0, 10);  // b idle until the second tick: no history then
  b.counts.publish = 5;
  b.sample(10000, 5000, 0, 3, 10);  // b's history: 0 at 5000 ms, 5 at 10000 ms

  ObjectStats sum;
  sum.add(a);
  sum.add(b);
  EXPECT_EQ(sum.counts.publish, 35u);
  ASSERT_NE(sum.history(), nullptr);
  const auto& s = sum.history()->samples();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].at_ms, 0u);
  EXPECT_EQ(s[1].at_ms, 5000u);
  EXPECT_EQ(s[1].counts.publish, 10u);
  EXPECT_EQ(s[2].counts.publish, 35u);
  EXPECT_EQ(s[2].ready, 1u);
  EXPECT_EQ(s[2].unacked, 3u);
  auto publish = [](const StatsSample& x) { return x.counts.publish; };
  EXPECT_DOUBLE_EQ(sum.history()->rate(publish), 5.0);  // (35 - 10) over 5 s

  ObjectStats idle;
  sum.add(idle);  // nothing sampled: changes nothing
  EXPECT_EQ(sum.history()->samples().size(), 3u);
}

TEST(MessageStatsTest, FieldSetsFollowRabbitMQ) {
  std::vector<std::string_view> names;
  for (const StatsField& f : stats_fields(StatsKind::kExchange)) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string_view>{"publish_in", "publish_out"}));
  names.clear();
  for (const StatsField& f : stats_fields(StatsKind::kQueue)) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string_view>{"ack", "deliver", "deliver_get",
                                                  "deliver_no_ack", "get", "get_empty",
                                                  "get_no_ack", "publish", "redeliver"}));
}

}  // namespace
}  // namespace warren::broker
