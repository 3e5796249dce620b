// DeliveryTracker: delivery tags, prefetch accounting and settlements, on a real Queue.
#include <gtest/gtest.h>

#include "broker/delivery_tracker.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::make_message;
using testing::TrackingSink;

class DeliveryTrackerTest : public ::testing::Test {
 protected:
  QueueRef q = Queue::create("/", "q", Queue::Options{}, &sched);
  FakeScheduler sched;
  DeliveryTracker tracker;
  TrackingSink sink{tracker};

  std::unique_ptr<Consumer> consumer(const std::string& tag) {
    auto c = testing::make_consumer(tag, &sink, tracker.consumer_prefetch());
    c->queue = q;
    return c;
  }
  void publish(int n) {
    for (int i = 0; i < n; ++i) q->enqueue(make_message(std::to_string(i)));
  }
};

TEST_F(DeliveryTrackerTest, TagsAscendAndAckFreesConsumerCredit) {
  tracker.set_prefetch(2, false);
  auto c = consumer("c");
  q->add_consumer(c.get());
  publish(5);
  sched.run(*q);
  EXPECT_EQ(sink.tags, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(q->message_count(), 3u);
  ASSERT_FALSE(tracker.settle(1, false, Settlement::kAck));
  sched.run(*q);
  EXPECT_EQ(sink.tags, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(tracker.outstanding(), 2u);
  q->remove_consumer(c.get());
}

TEST_F(DeliveryTrackerTest, UnknownAndDoubleAckedTagsAre406) {
  auto c = consumer("c");
  q->add_consumer(c.get());
  publish(1);
  sched.run(*q);
  Status s = tracker.settle(7, false, Settlement::kAck);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(s->text, "unknown delivery tag 7");
  EXPECT_FALSE(tracker.settle(1, false, Settlement::kAck));
  EXPECT_TRUE(tracker.settle(1, false, Settlement::kAck));
  // multiple with tag 0 means "everything outstanding", even when nothing is.
  EXPECT_FALSE(tracker.settle(0, true, Settlement::kAck));
  q->remove_consumer(c.get());
}

// The bug fixed with the core refactor: a cancelled consumer's deliveries kept counting against
// a channel-wide prefetch forever, so later consumers on the channel starved.
TEST_F(DeliveryTrackerTest, GlobalPrefetchIsReleasedByAcksOfACancelledConsumersDeliveries) {
  tracker.set_prefetch(2, true);
  auto first = consumer("first");
  q->add_consumer(first.get());
  publish(4);
  sched.run(*q);
  ASSERT_EQ(sink.tags.size(), 2u);
  q->remove_consumer(first.get());
  tracker.consumer_gone(first.get());
  auto second = consumer("second");
  q->add_consumer(second.get());
  sched.run(*q);
  // Still held by the cancelled consumer's two unacked deliveries, as in RabbitMQ...
  EXPECT_EQ(sink.tags.size(), 2u);
  ASSERT_FALSE(tracker.settle(2, true, Settlement::kAck));
  sched.run(*q);
  // ...and released by their acks.
  EXPECT_EQ(sink.tags.size(), 4u);
  q->remove_consumer(second.get());
}

TEST_F(DeliveryTrackerTest, RequeueAndRejectWithoutDeadLetterExchange) {
  auto c = consumer("c");
  q->add_consumer(c.get());
  publish(3);
  sched.run(*q);
  q->remove_consumer(c.get());
  tracker.consumer_gone(c.get());
  ASSERT_FALSE(tracker.settle(2, false, Settlement::kRequeue));
  ASSERT_FALSE(tracker.settle(3, false, Settlement::kReject));
  EXPECT_EQ(q->message_count(), 1u);  // "1" back, "2" dropped
  QueuedMessage m = q->pop();
  EXPECT_EQ(m.msg->body(), "1");
  EXPECT_TRUE(m.redelivered);
  tracker.requeue_all();  // "0" still outstanding
  EXPECT_EQ(q->message_count(), 1u);
  EXPECT_EQ(tracker.outstanding(), 0u);
}

TEST_F(DeliveryTrackerTest, DeferredSettlementsApplyAtCommitAndRestoreAtRollback) {
  auto c = consumer("c");
  q->add_consumer(c.get());
  publish(2);
  sched.run(*q);
  std::vector<DeliveryTracker::Deferred> tx;
  ASSERT_FALSE(tracker.defer(1, false, Settlement::kAck, &tx));
  EXPECT_TRUE(tracker.defer(1, false, Settlement::kAck, &tx)) << "taken by the transaction";
  tracker.restore(tx.front());
  tx.clear();
  ASSERT_FALSE(tracker.defer(2, true, Settlement::kAck, &tx));
  EXPECT_EQ(tx.size(), 2u);
  EXPECT_EQ(tracker.outstanding(), 2u);
  for (const auto& d : tx) tracker.apply(d);
  EXPECT_EQ(tracker.outstanding(), 0u);
  q->remove_consumer(c.get());
}

// One long-unacked delivery must not keep every later, acked one alive.
TEST_F(DeliveryTrackerTest, AckedEntriesBehindALongUnackedOneAreCompacted) {
  auto c = consumer("c");
  q->add_consumer(c.get());
  publish(1);
  sched.run(*q);
  for (int round = 0; round < 100; ++round) {
    publish(100);
    sched.run(*q);
    uint64_t last = sink.tags.back();
    for (uint64_t t = last - 99; t <= last; ++t) ASSERT_FALSE(tracker.settle(t, false, Settlement::kAck));
  }
  EXPECT_EQ(tracker.outstanding(), 1u);
  EXPECT_LE(tracker.tracked_entries(), 128u);
  EXPECT_FALSE(tracker.settle(1, false, Settlement::kAck)) << "the old delivery is still known";
  q->remove_consumer(c.get());
}

}  // namespace
}  // namespace warren::broker
