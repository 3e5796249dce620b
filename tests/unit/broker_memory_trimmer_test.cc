// MemoryTrimmer (memory_trimmer.h): when it trims (reports adding up, at most once per interval
// unless a step's worth waits), disposals freed in steps with a trim after each, and the queue
// side: ReadyMessages::take_released(), a purge handing its messages over, a drain reporting.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "broker/memory_trimmer.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "broker/ready_messages.h"

namespace warren::broker {
namespace {

using namespace std::chrono_literals;

constexpr size_t kLarge = ReadyMessages::kReleaseAfter;

QueuedMessage numbered(uint64_t seq) {
  QueuedMessage m;
  m.seq = seq;
  return m;
}

TEST(ReadyMessagesRelease, ReportsEachKReleaseAfterMessagesTaken) {
  ReadyMessages r;
  for (uint64_t i = 1; i < kLarge; ++i) r.push_back(numbered(i));
  while (!r.empty()) r.take_front();
  EXPECT_EQ(r.take_released(), 0u);  // fewer than kReleaseAfter ever left

  for (uint64_t i = 1; i <= 8 * kLarge; ++i) r.push_back(numbered(i));
  for (size_t i = 0; i + 1 < kLarge; ++i) r.take_front();
  EXPECT_EQ(r.take_released(), 0u);
  r.take_front();
  EXPECT_EQ(r.take_released(), kLarge);
  EXPECT_EQ(r.take_released(), 0u);  // reported once
  while (r.size() > kLarge) r.take_front();
  EXPECT_EQ(r.take_released(), 6 * kLarge);
  EXPECT_EQ(r.size(), kLarge);
  for (uint64_t seq = 7 * kLarge + 1; seq <= 8 * kLarge; ++seq) ASSERT_EQ(r.take_front().seq, seq);
  EXPECT_EQ(r.take_released(), kLarge);
  r.push_back(numbered(1));  // still usable after giving its deques back
  EXPECT_EQ(r.take_front().seq, 1u);
}

TEST(ReadyMessagesRelease, GrowingAgainAfterAReportCountsFromTheNewHigh) {
  ReadyMessages r;
  for (uint64_t i = 1; i <= kLarge; ++i) r.push_back(numbered(i));
  r.take_front();
  EXPECT_EQ(r.take_released(), 0u);
  for (uint64_t i = kLarge + 1; i <= 2 * kLarge; ++i) r.push_back(numbered(i));
  // The high is now 2 * kLarge - 1.
  while (r.size() > kLarge) r.take_front();
  EXPECT_EQ(r.take_released(), 0u);
  r.take_front();
  EXPECT_EQ(r.take_released(), kLarge);
}

TEST(ReadyMessagesRelease, WhatClearFreedIsReportedOnce) {
  ReadyMessages r;
  for (uint64_t i = 1; i <= kLarge; ++i) r.push_back(numbered(i));
  r.clear();
  EXPECT_EQ(r.take_released(), kLarge);
  EXPECT_EQ(r.take_released(), 0u);
  r.push_back(numbered(1));  // still usable after giving its deques back
  EXPECT_EQ(r.take_front().seq, 1u);
}

class CountingTrimmer {
 public:
  explicit CountingTrimmer(MemoryTrimmer::Options o)
      : trimmer(io, o, [this] { ++trims; }) {}
  boost::asio::io_context io;
  int trims = 0;
  MemoryTrimmer trimmer;
  // Runs the event loop until `trims` reaches n or `limit` passes.
  void run_until(int n, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (trims < n && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(5ms);
    }
  }
};

MemoryTrimmer::Options fast_options() {
  MemoryTrimmer::Options o;
  o.min_released = 1000;
  o.delay = 1ms;
  o.min_interval = 50ms;
  return o;
}

TEST(MemoryTrimmer, TrimsOnceReportsAddUpAndCoalescesABurst) {
  CountingTrimmer t(fast_options());
  t.trimmer.released(600);
  t.run_until(1, 30ms);
  EXPECT_EQ(t.trims, 0);  // 600 < min_released
  t.trimmer.released(600);
  for (int i = 0; i < 10; ++i) t.trimmer.released(5000);  // a burst: one trim
  t.run_until(1);
  EXPECT_EQ(t.trims, 1);
  EXPECT_EQ(t.trimmer.pending(), 0u);
  t.run_until(2, 100ms);
  EXPECT_EQ(t.trims, 1);  // nothing reported since
  EXPECT_EQ(t.trimmer.stats().trims, 1u);
}

TEST(MemoryTrimmer, AtMostOncePerInterval) {
  auto o = fast_options();
  o.min_interval = 300ms;
  CountingTrimmer t(o);
  t.trimmer.released(5000);
  t.run_until(1);
  ASSERT_EQ(t.trims, 1);
  auto first = std::chrono::steady_clock::now();
  t.trimmer.released(5000);
  t.run_until(2);
  ASSERT_EQ(t.trims, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - first, 250ms);
}

TEST(MemoryTrimmer, AStepsWorthWaitingTrimsOnTheNextTurn) {
  auto o = fast_options();
  o.min_interval = 10s;
  o.step_bytes = 10000;
  CountingTrimmer t(o);
  t.trimmer.released(5000);
  t.run_until(1);
  ASSERT_EQ(t.trims, 1);
  t.trimmer.released(5000);  // min_released, but within min_interval: waits
  t.run_until(2, 100ms);
  EXPECT_EQ(t.trims, 1);
  t.trimmer.released(5000);  // a step's worth now
  t.run_until(2, 100ms);
  EXPECT_EQ(t.trims, 2);
}

TEST(MemoryTrimmer, DisposesInStepsWithATrimAfterEach) {
  auto o = fast_options();
  o.step_bytes = 100;
  CountingTrimmer t(o);
  auto items = std::make_shared<std::deque<int>>(1000, 7);
  std::vector<size_t> left_at_trim;
  t.trimmer.dispose([items](uint64_t budget) -> uint64_t {
    uint64_t n = std::min<uint64_t>(items->size(), budget / 10);
    items->erase(items->begin(), items->begin() + static_cast<std::ptrdiff_t>(n));
    return n * 10;  // 10 bytes an item
  });
  EXPECT_EQ(items->size(), 1000u);  // nothing freed on the spot
  // One step per turn: 10 items, then a trim.
  for (int turn = 1; turn <= 3; ++turn) {
    t.io.restart();
    t.io.run_one();
    EXPECT_EQ(items->size(), 1000u - 10u * turn);
    EXPECT_EQ(t.trims, turn);
  }
  t.run_until(101);
  t.run_until(102, 50ms);
  EXPECT_TRUE(items->empty());
  EXPECT_FALSE(t.trimmer.disposing());
  EXPECT_EQ(t.trims, 101);  // 100 steps that freed, and the one that found nothing left
  EXPECT_EQ(t.trimmer.stats().disposed_steps, 100u);
}

TEST(MemoryTrimmer, PendingDisposalsAreFreedWithTheTrimmer) {
  auto items = std::make_shared<int>(1);
  {
    CountingTrimmer t(fast_options());
    t.trimmer.dispose([keep = items](uint64_t) -> uint64_t { return 0; });
    EXPECT_EQ(items.use_count(), 2);
  }
  EXPECT_EQ(items.use_count(), 1);
}

// A queue wired to a trimmer the way the broker wires it.
class TrimmingScheduler : public DispatchScheduler {
 public:
  explicit TrimmingScheduler(MemoryTrimmer* t) : trimmer(t) {}
  void schedule_dispatch(Queue& q) override {}
  MemoryTrimmer* memory_trimmer() override { return trimmer; }
  MemoryTrimmer* trimmer;
};

TEST(MemoryTrimmer, QueuesDisposeOfPurgesAndReportDrainsOfManyMessages) {
  auto o = fast_options();
  o.min_released = uint64_t{1} << 40;  // nothing but disposals trims here
  o.step_bytes = uint64_t{1} << 40;
  CountingTrimmer t(o);
  TrimmingScheduler sched(&t.trimmer);
  QueueRef q = Queue::create("/", "q", {}, &sched);
  for (size_t i = 0; i < kLarge; ++i) q->enqueue(Message::create("", "q", "", 0));
  uint64_t live = Message::live_bytes();
  EXPECT_EQ(q->purge(), kLarge);
  EXPECT_EQ(q->message_count(), 0u);
  EXPECT_TRUE(t.trimmer.disposing());
  EXPECT_EQ(Message::live_bytes(), live);  // the messages go in the trimmer's steps
  t.run_until(1);
  EXPECT_FALSE(t.trimmer.disposing());
  EXPECT_LT(Message::live_bytes(), live);
  EXPECT_EQ(t.trimmer.pending(), 0u);

  // A drain reports each kReleaseAfter messages taken (as the trimmer would then trim).
  for (size_t i = 0; i < 3 * kLarge; ++i) q->enqueue(Message::create("", "q", "", 0));
  for (size_t i = 0; i < kLarge - 1; ++i) q->pop();
  EXPECT_EQ(t.trimmer.pending(), 0u);
  q->pop();
  EXPECT_EQ(t.trimmer.pending(), kLarge * sizeof(QueuedMessage));
  while (q->message_count() > 0) q->pop();
  EXPECT_EQ(t.trimmer.pending(), 3 * kLarge * sizeof(QueuedMessage));

  // Small drains never report (a queue cycling below kReleaseAfter reuses its memory)...
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) q->enqueue(Message::create("", "q", "", 0));
    while (q->message_count() > 0) q->pop();
  }
  EXPECT_EQ(t.trimmer.pending(), 3 * kLarge * sizeof(QueuedMessage));
  EXPECT_FALSE(t.trimmer.disposing());
  // ...but small purges are disposed of too: many queues deleted together add up.
  for (int i = 0; i < 1000; ++i) q->enqueue(Message::create("", "q", "", 0));
  q->purge();
  EXPECT_TRUE(t.trimmer.disposing());
  q->purge();  // an empty queue has nothing to dispose of
  t.run_until(2);
  EXPECT_FALSE(t.trimmer.disposing());
}

TEST(MemoryTrimmer, TrimsTheRealHeap) {
  // malloc_trim itself: after freeing a lot under a live block, a trim gives RSS back.
  boost::asio::io_context io;
  MemoryTrimmer::Options o = fast_options();
  MemoryTrimmer trimmer(io, o);
  uint64_t before = MemoryTrimmer::rss_bytes();
  ASSERT_GT(before, 0u);
  std::unique_ptr<char[]> pin;
  {
    std::deque<QueuedMessage> big;
    for (uint64_t i = 0; i < 2'000'000; ++i) big.push_back(numbered(i));  // ~96 MB
    // A live block above it, so free() cannot shrink the heap (a size no free chunk has).
    pin = std::make_unique<char[]>(60000);
  }
  uint64_t freed_but_resident = MemoryTrimmer::rss_bytes();
  trimmer.released(uint64_t{96} << 20);
  auto end = std::chrono::steady_clock::now() + 5s;
  while (trimmer.stats().trims == 0 && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_for(5ms);
  }
  ASSERT_EQ(trimmer.stats().trims, 1u);
  uint64_t after = MemoryTrimmer::rss_bytes();
  EXPECT_LT(after + (uint64_t{48} << 20), freed_but_resident)
      << "before " << (before >> 20) << " MB, freed " << (freed_but_resident >> 20)
      << " MB, trimmed " << (after >> 20) << " MB";
}

}  // namespace
}  // namespace warren::broker
