// A vhost's running queue totals (queue_totals.h) follow every change of its queues' ready and
// unacked messages and consumers, and drop a queue's share when it is deleted.
#include <gtest/gtest.h>

#include "broker/delivery_tracker.h"
#include "broker/queue.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::make_message;
using testing::TrackingSink;

void expect_totals(const QueueTotals& t, int64_t ready, int64_t bytes, int64_t unacked,
                   int64_t consumers) {
  EXPECT_EQ(t.ready, ready);
  EXPECT_EQ(t.ready_bytes, bytes);
  EXPECT_EQ(t.unacked, unacked);
  EXPECT_EQ(t.consumers, consumers);
}

TEST(QueueTotalsTest, FollowEnqueueDeliveryAckRequeuePurgeAndDelete) {
  FakeScheduler sched;
  QueueTotals totals;
  QueueRef a = Queue::create("/", "a", Queue::Options{}, &sched);
  QueueRef b = Queue::create("/", "b", Queue::Options{}, &sched);
  a->enqueue(make_message("xx"));  // before it is counted: count_into adds what it holds
  a->count_into(&totals);
  b->count_into(&totals);
  expect_totals(totals, 1, 2, 0, 0);
  for (int i = 0; i < 3; ++i) b->enqueue(make_message("yyy"));
  expect_totals(totals, 4, 11, 0, 0);

  DeliveryTracker tracker;
  TrackingSink sink{tracker};
  uint64_t tag = tracker.delivered(nullptr, b.get(), b->pop(), false);
  expect_totals(totals, 3, 8, 1, 0);
  ASSERT_FALSE(tracker.settle(tag, false, Settlement::kRequeue));
  expect_totals(totals, 4, 11, 0, 0);

  auto c = testing::make_consumer("c", &sink, 0);
  c->queue = b;
  b->add_consumer(c.get());
  sched.run(*b);
  expect_totals(totals, 1, 2, 3, 1);
  ASSERT_FALSE(tracker.settle(0, true, Settlement::kAck));
  expect_totals(totals, 1, 2, 0, 1);
  b->remove_consumer(c.get());
  expect_totals(totals, 1, 2, 0, 0);

  b->enqueue(make_message("z"));
  tracker.delivered(nullptr, b.get(), b->pop(), false);  // left unacked
  a->purge();
  expect_totals(totals, 0, 0, 1, 0);
  a->enqueue(make_message("q"));
  b->mark_deleted();  // its unacked delivery leaves the totals with it
  expect_totals(totals, 1, 1, 0, 0);
  tracker.settle(0, true, Settlement::kAck);  // settling on a deleted queue changes nothing
  expect_totals(totals, 1, 1, 0, 0);
  a->mark_deleted();
  expect_totals(totals, 0, 0, 0, 0);
}

}  // namespace
}  // namespace warren::broker
