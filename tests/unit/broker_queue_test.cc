// Queue: FIFO delivery, round-robin dispatch through DeliverySink, can_deliver gating, requeue to
// original positions, pop/purge, auto-delete signalling, dispatch scheduling and publisher flow
// control (high/low water marks).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "broker/message.h"
#include "broker/queue.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::Delivery;
using testing::FakePublisher;
using testing::FakeScheduler;
using testing::FakeSink;
using testing::make_consumer;
using testing::make_message;

class BrokerQueueTest : public ::testing::Test {
 protected:
  static Queue::Options auto_delete_options() {
    Queue::Options o;
    o.auto_delete = true;
    return o;
  }
  QueueRef make_queue(Queue::Options o = {}) { return Queue::create("/", "q", std::move(o), &sched); }

  void publish(Queue& q, int from, int to) {
    for (int i = from; i <= to; ++i) q.enqueue(make_message(std::to_string(i)));
  }
  // Enqueues n empty messages (cheap) to reach the flow-control marks.
  void fill(Queue& q, size_t n) {
    for (size_t i = 0; i < n; ++i) q.enqueue(Message::create("", "", "", 0));
  }
  static std::vector<std::string> ready_bodies(Queue& q, std::vector<bool>* redelivered = nullptr,
                                               std::vector<uint64_t>* seqs = nullptr) {
    std::vector<std::string> out;
    while (q.message_count() > 0) {
      QueuedMessage m = q.pop();
      out.emplace_back(m.msg->body());
      if (redelivered) redelivered->push_back(m.redelivered);
      if (seqs) seqs->push_back(m.seq);
    }
    return out;
  }

  FakeScheduler sched;
  FakeSink sink;
};

using Strings = std::vector<std::string>;

TEST_F(BrokerQueueTest, DeliversInFifoOrder) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  publish(*q, 1, 5);
  EXPECT_EQ(q->message_count(), 5u);
  EXPECT_EQ(sched.run(*q), 5u);
  EXPECT_EQ(sink.bodies(), (Strings{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(q->message_count(), 0u);
  for (const Delivery& d : sink.deliveries) {
    EXPECT_EQ(d.queue, q.get());
    EXPECT_FALSE(d.msg.redelivered);
  }
  // Sequence numbers increase with publish order.
  for (size_t i = 1; i < sink.deliveries.size(); ++i)
    EXPECT_LT(sink.deliveries[i - 1].msg.seq, sink.deliveries[i].msg.seq);
}

TEST_F(BrokerQueueTest, DispatchWithoutConsumersDeliversNothing) {
  QueueRef q = make_queue();
  publish(*q, 1, 3);
  EXPECT_EQ(q->dispatch(), 0u);
  EXPECT_EQ(q->message_count(), 3u);
}

TEST_F(BrokerQueueTest, RoundRobinAcrossThreeConsumers) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink), c = make_consumer("c", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  q->add_consumer(c.get());
  EXPECT_EQ(q->consumer_count(), 3u);
  publish(*q, 1, 9);
  EXPECT_EQ(sched.run(*q), 9u);
  EXPECT_EQ(sink.tags(), (Strings{"a", "b", "c", "a", "b", "c", "a", "b", "c"}));
  EXPECT_EQ(sink.bodies("a"), (Strings{"1", "4", "7"}));
  EXPECT_EQ(sink.bodies("b"), (Strings{"2", "5", "8"}));
  EXPECT_EQ(sink.bodies("c"), (Strings{"3", "6", "9"}));
}

TEST_F(BrokerQueueTest, RoundRobinContinuesAcrossDispatchRuns) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink), c = make_consumer("c", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  q->add_consumer(c.get());
  for (int i = 1; i <= 4; ++i) {
    publish(*q, i, i);
    EXPECT_EQ(sched.run(*q), 1u);
  }
  EXPECT_EQ(sink.tags(), (Strings{"a", "b", "c", "a"}));
}

TEST_F(BrokerQueueTest, RefusingConsumerIsSkippedAndGetsNothing) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink), c = make_consumer("c", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  q->add_consumer(c.get());
  sink.refused_tags["b"] = true;  // b's prefetch window is full
  publish(*q, 1, 6);
  EXPECT_EQ(sched.run(*q), 6u);
  EXPECT_EQ(sink.tags(), (Strings{"a", "c", "a", "c", "a", "c"}));
  EXPECT_TRUE(sink.bodies("b").empty());
  EXPECT_EQ(b->unacked, 0u);
}

TEST_F(BrokerQueueTest, PrefetchWindowLimitsDeliveriesAndLeavesTheRestReady) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink, /*prefetch=*/2), b = make_consumer("b", &sink, 1);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  publish(*q, 1, 6);
  EXPECT_EQ(sched.run(*q), 3u);
  EXPECT_EQ(sink.tags(), (Strings{"a", "b", "a"}));
  EXPECT_EQ(q->message_count(), 3u);
  // An ack frees a's window: the next message goes to a, and b stays full.
  a->unacked = 1;
  EXPECT_EQ(sched.run(*q), 1u);
  EXPECT_EQ(sink.deliveries.back().tag, "a");
  EXPECT_EQ(sink.deliveries.back().body(), "4");
  EXPECT_EQ(q->message_count(), 2u);
}

TEST_F(BrokerQueueTest, AllConsumersRefusingLeavesMessagesReady) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  sink.refuse = true;
  publish(*q, 1, 3);
  EXPECT_EQ(sched.run(*q), 0u);
  EXPECT_EQ(q->message_count(), 3u);
  EXPECT_TRUE(sink.deliveries.empty());
  sink.refuse = false;
  EXPECT_EQ(sched.run(*q), 3u);
  EXPECT_EQ(sink.bodies(), (Strings{"1", "2", "3"}));
}

TEST_F(BrokerQueueTest, RemovingAConsumerKeepsRoundRobinGoing) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink), c = make_consumer("c", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  q->add_consumer(c.get());
  publish(*q, 1, 1);
  sched.run(*q);  // -> a; b is next
  EXPECT_FALSE(q->remove_consumer(a.get()));
  publish(*q, 2, 5);
  sched.run(*q);
  EXPECT_EQ(sink.tags(), (Strings{"a", "b", "c", "b", "c"}));
  // Removing the consumer that is next in turn passes the turn on.
  EXPECT_FALSE(q->remove_consumer(b.get()));
  publish(*q, 6, 7);
  sched.run(*q);
  EXPECT_EQ(sink.bodies("c"), (Strings{"3", "5", "6", "7"}));
}

TEST_F(BrokerQueueTest, RemoveUnknownConsumerIsANoOp) {
  QueueRef q = make_queue(auto_delete_options());
  auto a = make_consumer("a", &sink), stranger = make_consumer("x", &sink);
  q->add_consumer(a.get());
  EXPECT_FALSE(q->remove_consumer(stranger.get()));
  EXPECT_EQ(q->consumer_count(), 1u);
}

TEST_F(BrokerQueueTest, RequeuePutsMessagesBackAtTheirOriginalPositionsFlaggedRedelivered) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  publish(*q, 1, 5);
  ASSERT_EQ(sched.run(*q), 5u);
  ASSERT_EQ(sink.bodies(), (Strings{"1", "2", "3", "4", "5"}));
  // 1, 3 and 5 are acked; later messages arrive while 2 and 4 are still unacked.
  std::vector<QueuedMessage> unacked{sink.deliveries[3].msg, sink.deliveries[1].msg};  // 4, 2
  sink.deliveries.clear();
  q->remove_consumer(c.get());  // e.g. the channel closes
  publish(*q, 6, 7);
  q->requeue(std::move(unacked));
  EXPECT_EQ(q->message_count(), 4u);
  std::vector<bool> redelivered;
  EXPECT_EQ(ready_bodies(*q, &redelivered), (Strings{"2", "4", "6", "7"}));
  EXPECT_EQ(redelivered, (std::vector<bool>{true, true, false, false}));
}

TEST_F(BrokerQueueTest, RequeuedMessagesAreRedeliveredToConsumersFirst) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  publish(*q, 1, 5);
  sched.run(*q);
  std::vector<QueuedMessage> unacked{sink.deliveries[1].msg, sink.deliveries[3].msg};
  sink.deliveries.clear();
  publish(*q, 6, 7);
  sched.scheduled.clear();
  q->dispatch_scheduled = false;
  q->requeue(std::move(unacked));
  EXPECT_EQ(sched.scheduled.size(), 1u) << "requeue with consumers requests a dispatch";
  sched.run(*q);
  EXPECT_EQ(sink.bodies(), (Strings{"2", "4", "6", "7"}));
  ASSERT_EQ(sink.deliveries.size(), 4u);
  EXPECT_TRUE(sink.deliveries[0].msg.redelivered);
  EXPECT_TRUE(sink.deliveries[1].msg.redelivered);
  EXPECT_FALSE(sink.deliveries[2].msg.redelivered);
  EXPECT_FALSE(sink.deliveries[3].msg.redelivered);
}

TEST_F(BrokerQueueTest, RequeueMergesBySeqIntoAQueueHoldingLaterAndEarlierMessages) {
  QueueRef q = make_queue();
  publish(*q, 1, 6);
  std::vector<QueuedMessage> got;
  for (int i = 0; i < 4; ++i) got.push_back(q->pop());  // 1..4 taken, 5 6 ready
  q->requeue({got[2]});                                 // 3 back: 3 5 6
  q->requeue({got[3], got[1]});                         // 4 and 2: 2 3 4 5 6
  std::vector<bool> redelivered;
  std::vector<uint64_t> seqs;
  EXPECT_EQ(ready_bodies(*q, &redelivered, &seqs), (Strings{"2", "3", "4", "5", "6"}));
  EXPECT_EQ(redelivered, (std::vector<bool>{true, true, true, false, false}));
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]);
}

TEST_F(BrokerQueueTest, RequeueOfOlderMessagesOneByOne) {
  QueueRef q = make_queue();
  publish(*q, 1, 5);
  QueuedMessage m1 = q->pop(), m2 = q->pop();
  q->requeue({m1});  // 1 3 4 5 (front insert)
  q->requeue({m2});  // 2 is newer than the head 1: merge
  EXPECT_EQ(ready_bodies(*q), (Strings{"1", "2", "3", "4", "5"}));
}

TEST_F(BrokerQueueTest, RequeueIntoEmptyQueueAndEmptyRequeue) {
  QueueRef q = make_queue();
  publish(*q, 1, 3);
  std::vector<QueuedMessage> all{q->pop(), q->pop(), q->pop()};
  q->requeue({});
  EXPECT_EQ(q->message_count(), 0u);
  q->requeue({all[2], all[0], all[1]});
  std::vector<bool> redelivered;
  EXPECT_EQ(ready_bodies(*q, &redelivered), (Strings{"1", "2", "3"}));
  EXPECT_EQ(redelivered, (std::vector<bool>(3, true)));
}

TEST_F(BrokerQueueTest, RequeueIntoDeletedQueueDropsTheMessages) {
  QueueRef q = make_queue();
  publish(*q, 1, 1);
  QueuedMessage m = q->pop();
  q->mark_deleted();
  EXPECT_TRUE(q->deleted());
  q->requeue({m});
  EXPECT_EQ(q->message_count(), 0u);
}

TEST_F(BrokerQueueTest, PopPurgeAndMessageCount) {
  QueueRef q = make_queue();
  EXPECT_FALSE(q->pop().msg) << "pop on an empty queue returns an empty message";
  publish(*q, 1, 4);
  EXPECT_EQ(q->message_count(), 4u);
  QueuedMessage m = q->pop();
  ASSERT_TRUE(m.msg);
  EXPECT_EQ(m.msg->body(), "1");
  EXPECT_FALSE(m.redelivered);
  EXPECT_EQ(q->message_count(), 3u);
  EXPECT_EQ(q->purge(), 3u);
  EXPECT_EQ(q->message_count(), 0u);
  EXPECT_EQ(q->purge(), 0u);
  EXPECT_FALSE(q->pop().msg);
  // The queue is usable after a purge, and its order continues.
  publish(*q, 5, 6);
  EXPECT_EQ(ready_bodies(*q), (Strings{"5", "6"}));
}

TEST_F(BrokerQueueTest, PurgeDoesNotTouchDeliveredMessages) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink, 1);
  q->add_consumer(c.get());
  publish(*q, 1, 3);
  sched.run(*q);
  EXPECT_EQ(q->purge(), 2u);
  ASSERT_EQ(sink.deliveries.size(), 1u);
  EXPECT_EQ(sink.deliveries[0].body(), "1");
}

TEST_F(BrokerQueueTest, RemoveConsumerSignalsAutoDeleteOnlyForTheLastConsumer) {
  QueueRef q = make_queue(auto_delete_options());
  EXPECT_TRUE(q->auto_delete());
  EXPECT_FALSE(q->ever_had_consumer());
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  EXPECT_TRUE(q->ever_had_consumer());
  EXPECT_FALSE(q->remove_consumer(a.get()));
  EXPECT_FALSE(q->remove_consumer(a.get())) << "already removed";
  EXPECT_TRUE(q->remove_consumer(b.get()));
  EXPECT_EQ(q->consumer_count(), 0u);
  EXPECT_TRUE(q->ever_had_consumer());
}

TEST_F(BrokerQueueTest, RemoveConsumerNeverSignalsForANonAutoDeleteQueue) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  EXPECT_FALSE(q->remove_consumer(a.get()));
}

TEST_F(BrokerQueueTest, ExclusiveConsumer) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  a->exclusive = true;
  EXPECT_FALSE(q->has_exclusive_consumer());
  q->add_consumer(a.get());
  EXPECT_TRUE(q->has_exclusive_consumer());
  q->remove_consumer(a.get());
  EXPECT_FALSE(q->has_exclusive_consumer());
}

TEST_F(BrokerQueueTest, DispatchIsScheduledOnEnqueueOnlyWhenConsumersExist) {
  QueueRef q = make_queue();
  publish(*q, 1, 2);
  EXPECT_TRUE(sched.scheduled.empty()) << "no consumers: nothing to dispatch";
  EXPECT_FALSE(q->dispatch_scheduled);

  auto c = make_consumer("c", &sink);
  c->prefetch = 0;
  q->add_consumer(c.get());
  ASSERT_EQ(sched.scheduled.size(), 1u) << "a consumer arriving at a non-empty queue";
  EXPECT_EQ(sched.scheduled[0], q.get());
  EXPECT_TRUE(q->dispatch_scheduled);

  publish(*q, 3, 3);
  EXPECT_EQ(sched.scheduled.size(), 1u) << "already scheduled: no second request";
  sched.run(*q);
  EXPECT_FALSE(q->dispatch_scheduled);
  EXPECT_EQ(sink.bodies(), (Strings{"1", "2", "3"}));

  publish(*q, 4, 4);
  EXPECT_EQ(sched.scheduled.size(), 2u) << "consumers exist: enqueue schedules";
  sched.run(*q);

  q->remove_consumer(c.get());
  publish(*q, 5, 5);
  EXPECT_EQ(sched.scheduled.size(), 2u) << "last consumer gone: enqueue does not schedule";
}

TEST_F(BrokerQueueTest, AddingAConsumerToAnEmptyQueueDoesNotSchedule) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  EXPECT_TRUE(sched.scheduled.empty());
}

TEST_F(BrokerQueueTest, DeletedQueueDoesNotRequestDispatch) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  q->mark_deleted();
  publish(*q, 1, 1);
  EXPECT_TRUE(sched.scheduled.empty());
}

TEST_F(BrokerQueueTest, QueueWithoutSchedulerStillWorks) {
  QueueRef q = Queue::create("/", "q", {}, nullptr);
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  publish(*q, 1, 2);
  EXPECT_EQ(q->dispatch(), 2u);
}

TEST_F(BrokerQueueTest, OptionsAndNames) {
  Queue::Options o;
  o.durable = true;
  o.exclusive = true;
  o.owner_connection = 42;
  QueueRef q = Queue::create("vh", "name", o, &sched);
  EXPECT_EQ(q->vhost(), "vh");
  EXPECT_EQ(q->name(), "name");
  EXPECT_TRUE(q->durable());
  EXPECT_TRUE(q->exclusive());
  EXPECT_FALSE(q->auto_delete());
  EXPECT_EQ(q->owner_connection(), 42u);
  EXPECT_FALSE(q->deleted());
}

// -- flow control --------------------------------------------------------------------------------

TEST_F(BrokerQueueTest, NotOverHighWaterWithoutConsumers) {
  QueueRef q = make_queue();
  fill(*q, Queue::kFlowHighWater + 10);
  EXPECT_FALSE(q->over_high_water()) << "without consumers a backlog may grow";
}

TEST_F(BrokerQueueTest, OverHighWaterWithAConsumerAtTheMark) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  fill(*q, Queue::kFlowHighWater - 1);
  EXPECT_FALSE(q->over_high_water());
  fill(*q, 1);
  EXPECT_TRUE(q->over_high_water());
  q->remove_consumer(c.get());
  EXPECT_FALSE(q->over_high_water());
}

TEST_F(BrokerQueueTest, OverHighWaterByBytes) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink);
  q->add_consumer(c.get());
  sink.refuse = true;
  // The body is never written, so the big allocation is not touched.
  q->enqueue(Message::create("", "", "", Queue::kFlowHighBytes - 1));
  EXPECT_FALSE(q->over_high_water());
  q->enqueue(Message::create("", "", "", 1));
  EXPECT_TRUE(q->over_high_water());
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);
  sink.refuse = false;
  sched.run(*q);
  EXPECT_EQ(p->unblocked, 1);
  EXPECT_FALSE(q->over_high_water());
}

TEST_F(BrokerQueueTest, BlockedPublisherIsNotifiedOnceWhenDispatchDrainsBelowLowWater) {
  QueueRef q = make_queue();
  auto c = make_consumer("c", &sink, /*prefetch=*/0);
  q->add_consumer(c.get());
  fill(*q, Queue::kFlowHighWater);
  ASSERT_TRUE(q->over_high_water());
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);

  // Drain to just above the low-water mark: still blocked.
  c->prefetch = static_cast<uint32_t>(Queue::kFlowHighWater - Queue::kFlowLowWater - 1);
  sched.run(*q);
  ASSERT_EQ(q->message_count(), Queue::kFlowLowWater + 1);
  EXPECT_EQ(p->unblocked, 0);
  EXPECT_FALSE(q->over_high_water());

  // Below the low-water mark: released, exactly once.
  c->prefetch += 2;
  sched.run(*q);
  ASSERT_EQ(q->message_count(), Queue::kFlowLowWater - 1);
  EXPECT_EQ(p->unblocked, 1);
  EXPECT_EQ(p->last_queue, q.get());

  c->prefetch = 0;
  sched.run(*q);
  EXPECT_EQ(q->message_count(), 0u);
  q->purge();
  q->remove_consumer(c.get());
  q->mark_deleted();
  EXPECT_EQ(p->unblocked, 1) << "notified exactly once";
}

TEST_F(BrokerQueueTest, BlockedPublisherIsNotifiedWhenTheLastConsumerGoes) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink), b = make_consumer("b", &sink);
  q->add_consumer(a.get());
  q->add_consumer(b.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowHighWater);
  ASSERT_TRUE(q->over_high_water());
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);
  q->remove_consumer(a.get());
  EXPECT_EQ(p->unblocked, 0) << "one consumer is left";
  q->remove_consumer(b.get());
  EXPECT_EQ(p->unblocked, 1);
  EXPECT_FALSE(q->over_high_water());
  EXPECT_EQ(q->message_count(), Queue::kFlowHighWater) << "the backlog stays";
}

TEST_F(BrokerQueueTest, BlockedPublisherIsNotifiedWhenPurged) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowHighWater);
  auto p1 = std::make_shared<FakePublisher>(), p2 = std::make_shared<FakePublisher>();
  q->block_publisher(p1);
  q->block_publisher(p2);
  EXPECT_EQ(q->purge(), Queue::kFlowHighWater);
  EXPECT_EQ(p1->unblocked, 1);
  EXPECT_EQ(p2->unblocked, 1);
  q->purge();
  EXPECT_EQ(p1->unblocked, 1);
}

TEST_F(BrokerQueueTest, BlockedPublisherIsNotifiedWhenDeleted) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowHighWater);
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);
  q->mark_deleted();
  EXPECT_EQ(p->unblocked, 1);
}

TEST_F(BrokerQueueTest, BlockedPublisherIsNotifiedWhenPopDrainsBelowLowWater) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowLowWater + 1);
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);
  sched.run(*q);
  EXPECT_EQ(p->unblocked, 0);
  q->pop();
  q->pop();
  EXPECT_EQ(p->unblocked, 1);
}

TEST_F(BrokerQueueTest, ExpiredPublisherIsSkipped) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowHighWater);
  auto alive = std::make_shared<FakePublisher>();
  {
    auto gone = std::make_shared<FakePublisher>();
    q->block_publisher(gone);
  }
  q->block_publisher(alive);
  q->purge();
  EXPECT_EQ(alive->unblocked, 1);
}

TEST_F(BrokerQueueTest, PublisherPausedAgainAfterTheStallBreakerIsRegisteredOnce) {
  // The stall breaker resumes a publisher without telling the queue; pausing it again registers
  // it a second time. The queue keeps it once and notifies it once (it used to keep both).
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  fill(*q, Queue::kFlowHighWater);
  auto p = std::make_shared<FakePublisher>();
  q->block_publisher(p);
  q->block_publisher(p);
  q->purge();
  EXPECT_EQ(p->unblocked, 1);
}

TEST_F(BrokerQueueTest, PublisherBlockedAgainAfterReleaseIsNotifiedAgain) {
  QueueRef q = make_queue();
  auto a = make_consumer("a", &sink);
  q->add_consumer(a.get());
  sink.refuse = true;
  auto p = std::make_shared<FakePublisher>();
  fill(*q, Queue::kFlowHighWater);
  q->block_publisher(p);
  q->purge();
  EXPECT_EQ(p->unblocked, 1);
  fill(*q, Queue::kFlowHighWater);
  ASSERT_TRUE(q->over_high_water());
  q->block_publisher(p);
  sink.refuse = false;
  sched.run(*q);
  EXPECT_EQ(p->unblocked, 2);
}

}  // namespace
}  // namespace warren::broker
