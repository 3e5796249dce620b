// Which journal segments exist and which can be deleted (owner thread only).
//
// Each segment counts its live messages: +1 per MESSAGE record written to it, -1 per ack of one of
// them. A segment is garbage when it is not the active one and has no live messages left.
//
// One more rule keeps acks from being lost: a segment's ACK records are what keep messages in
// *older* segments dead. If segment 7 acks a message in segment 3 and 3 still has other live
// messages, deleting 7 would resurrect that message at the next recovery. So every segment
// remembers which older segments its acks point into ("ack targets") and stays until all of them
// are gone. Acks only ever point backwards, so these dependencies cannot form a cycle, and one
// ascending pass settles every cascade.
//
// live_bytes() per segment lets the broker find sparse segments to compact (message_store.h).
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <vector>

namespace warren::store {

class SegmentSet {
 public:
  // A segment that now exists (recovered from disk, or just started).
  void add(uint32_t id);
  // The segment appends go to; never deleted. The previous active one becomes collectable.
  void set_active(uint32_t id);
  uint32_t active() const { return active_; }

  // bytes: the record's size, for live_bytes() (compaction's measure of a segment's use).
  void on_message(uint32_t segment, uint64_t bytes = 0);
  // An ACK record written into `ack_segment` for a message stored in `msg_segment`. Also what a
  // relocation does to the old copy: the new copy's segment then keeps the old one's records
  // dead the way an ack does.
  void on_ack(uint32_t ack_segment, uint32_t msg_segment, uint64_t bytes = 0);
  // An ACK record written again (its first write failed): only the dependency, no count change.
  void add_ack_target(uint32_t ack_segment, uint32_t msg_segment);

  // Moves every deletable segment, oldest first, to *out and forgets it.
  void collect(std::vector<uint32_t>* out);
  bool has_garbage() const { return maybe_garbage_; }

  bool contains(uint32_t id) const { return segs_.contains(id); }
  uint64_t live(uint32_t id) const;
  uint64_t live_bytes(uint32_t id) const;
  // Sealed segments with live messages whose live records use less than max_live_bytes:
  // candidates for compaction, oldest first.
  std::vector<uint32_t> sparse(uint64_t max_live_bytes) const;
  size_t size() const { return segs_.size(); }
  // Every existing segment id, ascending (for stats and tests).
  std::vector<uint32_t> ids() const;

 private:
  struct Info {
    uint64_t live = 0;
    uint64_t live_bytes = 0;
    std::vector<uint32_t> ack_targets;  // older segments this one holds acks for
  };
  boost::unordered_flat_map<uint32_t, Info> segs_;
  uint32_t active_ = 0;
  Info* active_info_ = nullptr;  // cached: on_message runs once per publish
  bool maybe_garbage_ = false;
};

}  // namespace warren::store
