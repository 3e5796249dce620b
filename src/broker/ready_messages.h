// A queue's ready messages: one FIFO per priority level (one level for a queue without
// x-max-priority), each in publish order (seq), taken highest level first. Requeued messages go
// back to their original position within their level.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstdint>
#include <deque>
#include <vector>

#include "broker/message.h"
#include "store/segment_format.h"

namespace warren::broker {

class MemoryTrimmer;

// A message waiting in (or delivered from) a queue. seq orders messages by publish time so that a
// requeued message returns to its original position.
// pos is where the journal holds the message (pos.size == 0: not journaled); seq doubles as its
// msg id there. A transient message is journaled only when paged out (paged_transient), under an
// id that recovery does not know, so it never comes back after a restart.
// Field order keeps it at 40 bytes (12 per std::deque block): it is copied on every enqueue and
// delivery.
struct QueuedMessage {
  MessageRef msg;
  uint64_t seq = 0;
  uint64_t expires_at = 0;  // steady-clock milliseconds; 0 = never
  store::Position pos;
  uint8_t priority = 0;     // the message's priority, capped at the queue's x-max-priority
  bool redelivered = false;
  bool paged_transient = false;
  bool relocating = false;  // a compaction copy of its record is being written
  bool journaled() const { return pos.size != 0; }
};
static_assert(sizeof(QueuedMessage) == 40);

class ReadyMessages {
 public:
  explicit ReadyMessages(uint8_t max_priority = 0) : levels_(size_t{max_priority} + 1) {}

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Also count the size into *tally (a vhost's running total of ready messages); null stops.
  void count_into(int64_t* tally) {
    if (tally_ != nullptr) *tally_ -= static_cast<int64_t>(size_);
    tally_ = tally;
    if (tally_ != nullptr) *tally_ += static_cast<int64_t>(size_);
  }
  uint8_t max_priority() const { return static_cast<uint8_t>(levels_.size() - 1); }
  uint8_t cap(uint8_t priority) const { return std::min(priority, max_priority()); }

  void push_back(QueuedMessage m) {
    level(m.priority).push_back(std::move(m));
    add_size(1);
    grew();
  }
  // The next message to deliver: the oldest of the highest non-empty level.
  QueuedMessage& front() { return levels_[top()].front(); }
  QueuedMessage take_front() {
    auto& l = levels_[top()];
    QueuedMessage m = std::move(l.front());
    l.pop_front();
    if (l.empty()) mark_empty(m.priority);
    add_size(-1);
    return m;
  }
  // Calls f(level) for the FIFO of each non-empty level, highest first.
  template <class F>
  void for_each_level(F&& f) {
    for (size_t i = levels_.size(); i-- > 0;)
      if (!levels_[i].empty()) f(levels_[i]);
  }
  // Removes the front of a level obtained through for_each_level.
  void pop_front_of(std::deque<QueuedMessage>& l) {
    uint8_t p = l.front().priority;
    l.pop_front();
    add_size(-1);
    if (l.empty()) mark_empty(p);
  }
  // The message with this seq and priority, or null.
  QueuedMessage* find(uint64_t seq, uint8_t priority) {
    auto& l = levels_[cap(priority)];  // a lookup: the level is not marked non-empty
    auto it = lower(l, seq);
    return it == l.end() || it->seq != seq ? nullptr : &*it;
  }
  void erase(uint64_t seq, uint8_t priority) {
    auto& l = levels_[cap(priority)];
    auto it = lower(l, seq);
    if (it == l.end() || it->seq != seq) return;
    l.erase(it);
    add_size(-1);
    if (l.empty()) mark_empty(priority);
  }
  // Inserts at its seq position (recovery, where records are already in order).
  void insert_sorted(QueuedMessage m) {
    auto& l = level(m.priority);
    uint64_t seq = m.seq;
    if (l.empty() || l.back().seq < seq) {
      l.push_back(std::move(m));
    } else {
      l.insert(lower(l, seq), std::move(m));
    }
    add_size(1);
    grew();
  }
  // Puts requeued messages (sorted by seq) back at their positions.
  void merge(std::vector<QueuedMessage>& sorted);
  template <class F>
  void for_each(F&& f) {
    for (auto& l : levels_)
      for (auto& m : l) f(m);
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& l : levels_)
      for (const auto& m : l) f(m);
  }
  void clear() {
    for (auto& l : levels_) std::deque<QueuedMessage>().swap(l);
    nonempty_ = {};
    add_size(-static_cast<int64_t>(size_));  // mark_ stays: take_released() reports what this freed
  }

  // Memory (memory_trimmer.h). A std::deque frees its blocks as it drains, but glibc keeps them
  // resident, and the deque keeps its map (8 bytes per 10 messages of its peak) until cleared.
  // take_released(): once at least kReleaseAfter messages left since the last report, returns
  // how many (0 otherwise), so the caller can report their memory as freed; when that leaves the
  // container empty, its deques' maps go too.
  static constexpr size_t kReleaseAfter = 65536;
  size_t take_released() {
    if (mark_ - size_ < kReleaseAfter) return 0;
    size_t freed = mark_ - size_;
    if (size_ == 0) clear();
    mark_ = size_;
    return freed;
  }
  // clear() for a purge or a delete: with a trimmer, the messages (bodies in RAM included) and
  // the deques' blocks are freed in steps by the trimmer rather than now, however few they are:
  // many small queues deleted together add up too (ready_messages.cc).
  void clear(MemoryTrimmer* trimmer);

 private:
  void add_size(int64_t delta) {
    size_ = static_cast<size_t>(static_cast<int64_t>(size_) + delta);
    if (tally_ != nullptr) *tally_ += delta;
  }
  void grew() {
    if (size_ > mark_) mark_ = size_;
  }
  // The level a message is about to be added to, marked non-empty. Only for additions: a level
  // marked but left empty would be top() and take_front() would read past an empty deque (a
  // lookup of a message already delivered did that, when a journal sync came late).
  std::deque<QueuedMessage>& level(uint8_t priority) {
    uint8_t p = cap(priority);
    nonempty_[p / 64] |= uint64_t{1} << (p % 64);
    return levels_[p];
  }
  void mark_empty(uint8_t priority) {
    uint8_t p = cap(priority);
    if (levels_[p].empty()) nonempty_[p / 64] &= ~(uint64_t{1} << (p % 64));
  }
  size_t top() const {
    for (size_t w = nonempty_.size(); w-- > 0;)
      if (nonempty_[w] != 0) return w * 64 + (63 - std::countl_zero(nonempty_[w]));
    assert(false && "front() of an empty queue");
    return 0;
  }
  static std::deque<QueuedMessage>::iterator lower(std::deque<QueuedMessage>& l, uint64_t seq) {
    return std::lower_bound(l.begin(), l.end(), seq,
                            [](const QueuedMessage& e, uint64_t s) { return e.seq < s; });
  }

  std::vector<std::deque<QueuedMessage>> levels_;
  std::array<uint64_t, 4> nonempty_{};  // bit p: level p may hold messages
  size_t size_ = 0;
  size_t mark_ = 0;  // the most messages held since take_released() last reported
  int64_t* tally_ = nullptr;
};

inline void ReadyMessages::merge(std::vector<QueuedMessage>& sorted) {
  // Group by level, keeping seq order within each.
  std::vector<std::vector<QueuedMessage>> by_level(levels_.size());
  for (auto& m : sorted) by_level[cap(m.priority)].push_back(std::move(m));
  for (size_t p = 0; p < by_level.size(); ++p) {
    auto& msgs = by_level[p];
    if (msgs.empty()) continue;
    auto& l = level(static_cast<uint8_t>(p));
    add_size(static_cast<int64_t>(msgs.size()));
    grew();
    if (l.empty() || msgs.back().seq < l.front().seq) {
      // The common case: everything requeued is older than what is ready.
      for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) l.push_front(std::move(*it));
    } else {
      std::deque<QueuedMessage> merged;
      std::merge(std::make_move_iterator(msgs.begin()), std::make_move_iterator(msgs.end()),
                 std::make_move_iterator(l.begin()), std::make_move_iterator(l.end()),
                 std::back_inserter(merged),
                 [](const QueuedMessage& a, const QueuedMessage& b) { return a.seq < b.seq; });
      l.swap(merged);
    }
  }
}

}  // namespace warren::broker
