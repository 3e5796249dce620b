// The index of a delayed exchange's waiting messages: a binary min-heap of 24-byte entries in one
// std::vector, ordered by due time and then by publish order. An entry says when the message is
// due and where its body is: a journal position (segment, offset, size) or, when size is 0, a
// body held in RAM under the entry's id. Nothing else of a message stays in memory, so a million
// delayed messages cost 24 MB here (RabbitMQ's delayed-message plugin keeps every message in a
// RAM table).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "store/segment_format.h"

namespace warren::broker {

struct DelayEntry {
  // Bit fields packed into three words: due (44 bits of ms) and id (53 bits) are far beyond
  // what a broker reaches; size needs 30 bits (records are < 1 GiB) and is split in two.
  uint64_t due : 44;      // ms on the delay clock (delay_clock_ms())
  uint64_t size_lo : 20;
  uint64_t id : 53;       // publish order (unique per process); the journal msg id; RAM body key
  uint64_t size_hi : 10;
  uint64_t durable : 1;   // journaled as a durable delayed message (else as a page-out)
  uint32_t segment = 0;
  uint32_t offset = 0;

  static constexpr uint64_t kMaxDue = (uint64_t{1} << 44) - 1;
  static constexpr uint64_t kMaxId = (uint64_t{1} << 53) - 1;

  DelayEntry() : due(0), size_lo(0), id(0), size_hi(0), durable(0) {}
  DelayEntry(uint64_t due_ms, uint64_t id_) : DelayEntry() {
    due = std::min(due_ms, kMaxDue);
    id = id_ & kMaxId;
  }

  uint32_t size() const { return static_cast<uint32_t>(size_lo | (uint64_t{size_hi} << 20)); }
  bool on_disk() const { return size() != 0; }
  store::Position position() const { return store::Position{segment, offset, size()}; }
  void set_position(const store::Position& p) {
    segment = p.segment;
    offset = p.offset;
    size_lo = p.size & 0xFFFFF;
    size_hi = (p.size >> 20) & 0x3FF;
  }
  void clear_position() { set_position(store::Position{}); }

  // Earlier due first; the same due time in publish order.
  bool before(const DelayEntry& o) const {
    return due != o.due ? due < o.due : id < o.id;
  }
};
static_assert(sizeof(DelayEntry) == 24, "the delay index promises 24 bytes per message");

class DelayIndex {
 public:
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  // Bytes held by the index itself (for tests and stats).
  size_t memory_bytes() const { return heap_.capacity() * sizeof(DelayEntry); }

  const DelayEntry& top() const { return heap_.front(); }

  void push(const DelayEntry& e) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), Later{});
  }

  DelayEntry pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    DelayEntry e = heap_.back();
    heap_.pop_back();
    // A drained index gives its memory back: a burst of a million delayed messages must not
    // keep 24 MB once they are delivered.
    if (heap_.capacity() > kShrinkFloor && heap_.size() < heap_.capacity() / 4)
      std::vector<DelayEntry>(heap_.begin(), heap_.end()).swap(heap_);
    return e;
  }

  // Visits every entry (in no particular order); f may change anything but due and id.
  template <class F>
  void for_each(F&& f) {
    for (DelayEntry& e : heap_) f(e);
  }

  // Removes the entries for which pred is true; returns how many.
  template <class Pred>
  size_t remove_if(Pred&& pred) {
    size_t removed = std::erase_if(heap_, pred);
    if (removed > 0) std::make_heap(heap_.begin(), heap_.end(), Later{});
    return removed;
  }

  void clear() { std::vector<DelayEntry>().swap(heap_); }

 private:
  // std heap algorithms build a max-heap: "less" means "due later".
  struct Later {
    bool operator()(const DelayEntry& a, const DelayEntry& b) const { return b.before(a); }
  };
  static constexpr size_t kShrinkFloor = 4096;
  std::vector<DelayEntry> heap_;
};

}  // namespace warren::broker
