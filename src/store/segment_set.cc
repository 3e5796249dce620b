#include "store/segment_set.h"

#include <algorithm>

namespace warren::store {

void SegmentSet::add(uint32_t id) {
  segs_.try_emplace(id);
  active_info_ = nullptr;  // flat map inserts may move elements
}

void SegmentSet::set_active(uint32_t id) {
  add(id);
  active_ = id;
  maybe_garbage_ = true;  // the previous active segment may be empty already
}

void SegmentSet::on_message(uint32_t segment, uint64_t bytes) {
  if (segment == active_) {
    if (!active_info_) active_info_ = &segs_[active_];
    ++active_info_->live;
    active_info_->live_bytes += bytes;
    return;
  }
  if (auto it = segs_.find(segment); it != segs_.end()) {
    ++it->second.live;
    it->second.live_bytes += bytes;
  }
}

void SegmentSet::on_ack(uint32_t ack_segment, uint32_t msg_segment, uint64_t bytes) {
  auto it = segs_.find(msg_segment);
  if (it == segs_.end() || it->second.live == 0) return;  // already gone: nothing to keep alive
  it->second.live_bytes -= std::min(it->second.live_bytes, bytes);
  if (--it->second.live == 0 && msg_segment != active_) maybe_garbage_ = true;
  add_ack_target(ack_segment, msg_segment);
}

void SegmentSet::add_ack_target(uint32_t ack_segment, uint32_t msg_segment) {
  if (msg_segment == ack_segment || !segs_.contains(msg_segment)) return;
  auto ack = segs_.find(ack_segment);
  if (ack == segs_.end()) return;
  auto& targets = ack->second.ack_targets;
  // Acks arrive roughly in publish order, so the newest target is the likely repeat.
  if (!targets.empty() && targets.back() == msg_segment) return;
  if (std::find(targets.begin(), targets.end(), msg_segment) == targets.end())
    targets.push_back(msg_segment);
}

void SegmentSet::collect(std::vector<uint32_t>* out) {
  if (!maybe_garbage_) return;
  maybe_garbage_ = false;
  std::vector<uint32_t> order = ids();
  for (uint32_t id : order) {  // ascending: a deletion here can only unblock a later id
    if (id == active_) continue;
    auto it = segs_.find(id);
    if (it->second.live != 0) continue;
    bool blocked = std::any_of(it->second.ack_targets.begin(), it->second.ack_targets.end(),
                               [&](uint32_t t) { return segs_.contains(t); });
    if (blocked) continue;
    segs_.erase(it);
    out->push_back(id);
  }
  active_info_ = nullptr;
}

uint64_t SegmentSet::live_bytes(uint32_t id) const {
  auto it = segs_.find(id);
  return it == segs_.end() ? 0 : it->second.live_bytes;
}

std::vector<uint32_t> SegmentSet::sparse(uint64_t max_live_bytes) const {
  std::vector<uint32_t> out;
  for (const auto& [id, info] : segs_)
    if (id != active_ && info.live > 0 && info.live_bytes < max_live_bytes) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t SegmentSet::live(uint32_t id) const {
  auto it = segs_.find(id);
  return it == segs_.end() ? 0 : it->second.live;
}

std::vector<uint32_t> SegmentSet::ids() const {
  std::vector<uint32_t> v;
  v.reserve(segs_.size());
  for (const auto& [id, info] : segs_) v.push_back(id);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace warren::store
