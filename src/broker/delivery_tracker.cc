#include "broker/delivery_tracker.h"

#include <algorithm>

#include "broker/vhost.h"

namespace warren::broker {

namespace {

using Requeued = std::vector<std::pair<QueueRef, std::vector<QueuedMessage>>>;

// Requeued messages grouped per queue, so each queue merges them back in one pass.
void add_requeued(Requeued& groups, const QueueRef& q, QueuedMessage m) {
  auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == q; });
  if (g == groups.end()) g = groups.insert(groups.end(), {q, {}});
  g->second.push_back(std::move(m));
}

void apply_requeued(Requeued& groups) {
  for (auto& [q, msgs] : groups) q->requeue(std::move(msgs));
}

}  // namespace

void DeliveryTracker::set_prefetch(uint32_t count, bool global) {
  if (global) {
    channel_prefetch_ = count;
  } else {
    consumer_prefetch_ = count;
    channel_prefetch_ = 0;
  }
}

bool DeliveryTracker::can_deliver(const Consumer& c) const {
  if (c.no_ack) return true;
  if (c.prefetch != 0 && c.unacked >= c.prefetch) return false;
  if (channel_prefetch_ != 0 && consumer_unacked_ >= channel_prefetch_) return false;
  return true;
}

uint64_t DeliveryTracker::delivered(Consumer* c, Queue* q, QueuedMessage&& m, bool no_ack) {
  uint64_t tag = next_tag_++;
  bool is_get = c == nullptr;
  stats_.counts.count_delivery(is_get, no_ack, m.redelivered);
  if (q != nullptr) {
    q->stats().counts.count_delivery(is_get, no_ack, m.redelivered);
    if (VHost* vh = q->owner()) vh->stats().counts.count_delivery(is_get, no_ack, m.redelivered);
    if (!no_ack) q->delivery_outstanding();
  }
  if (no_ack) {
    if (q != nullptr) q->discard(m);
    return tag;
  }
  if (c != nullptr) {
    ++c->unacked;
    ++consumer_unacked_;
  }
  ++outstanding_;
  if (entries_.full()) entries_.set_capacity(std::max<size_t>(kMinCapacity, entries_.capacity() * 2));
  entries_.push_back(Entry{tag, std::move(m), QueueRef(q), c, false, false, c != nullptr});
  return tag;
}

DeliveryTracker::Iter DeliveryTracker::find(uint64_t tag) {
  return std::lower_bound(entries_.begin(), entries_.end(), tag,
                          [](const Entry& e, uint64_t t) { return e.tag < t; });
}

OpResult<std::pair<DeliveryTracker::Iter, DeliveryTracker::Iter>> DeliveryTracker::range(
    uint64_t tag, bool multiple) {
  Iter it = find(tag);
  bool exact = it != entries_.end() && it->tag == tag && !it->done && !it->deferred;
  if (!exact && !(multiple && tag == 0))
    return make_error(ErrorCode::kPreconditionFailed, "unknown delivery tag {}", tag);
  Iter begin = multiple ? entries_.begin() : it;
  Iter end = (multiple && tag == 0) ? entries_.end() : it + 1;
  return std::pair{begin, end};
}

void DeliveryTracker::release_credit(Entry& e) {
  // Counted apart from the consumer pointer: the deliveries of a cancelled consumer still hold
  // the channel's prefetch until acked, and must release it then.
  if (e.counted) --consumer_unacked_;
  e.counted = false;
  if (e.consumer == nullptr) return;
  --e.consumer->unacked;
  if (e.consumer->queue) e.consumer->queue->request_dispatch();
  e.consumer = nullptr;
}

void DeliveryTracker::settle_entry(Entry& e, Settlement how, Requeued& requeued) {
  e.done = true;
  if (e.queue) e.queue->delivery_settled();
  --outstanding_;
  release_credit(e);
  switch (how) {
    case Settlement::kRequeue:
      if (e.queue) add_requeued(requeued, e.queue, std::move(e.message));
      break;
    case Settlement::kReject:
      if (e.queue) e.queue->reject(std::move(e.message));
      break;
    case Settlement::kAck:
      ++stats_.counts.ack;
      if (e.queue) {
        ++e.queue->stats().counts.ack;
        if (VHost* vh = e.queue->owner()) ++vh->stats().counts.ack;
        e.queue->discard(e.message);
      }
      break;
  }
  e.message.msg.reset();
  e.queue.reset();
}

Status DeliveryTracker::settle(uint64_t tag, bool multiple, Settlement how) {
  auto r = range(tag, multiple);
  if (!r) return r.error();
  Requeued requeued;
  for (Iter e = r->first; e != r->second; ++e)
    if (!e->done && !e->deferred) settle_entry(*e, how, requeued);
  apply_requeued(requeued);
  compact();
  return std::nullopt;
}

Status DeliveryTracker::defer(uint64_t tag, bool multiple, Settlement how,
                              std::vector<Deferred>* out) {
  auto r = range(tag, multiple);
  if (!r) return r.error();
  for (Iter e = r->first; e != r->second; ++e) {
    if (e->done || e->deferred) continue;
    e->deferred = true;
    out->push_back(Deferred{e->tag, how});
  }
  return std::nullopt;
}

void DeliveryTracker::apply(const Deferred& d) {
  Iter it = find(d.tag);
  if (it == entries_.end() || it->tag != d.tag || it->done) return;
  it->deferred = false;
  Requeued requeued;
  settle_entry(*it, d.how, requeued);
  apply_requeued(requeued);
  compact();
}

void DeliveryTracker::restore(const Deferred& d) {
  Iter it = find(d.tag);
  if (it != entries_.end() && it->tag == d.tag) it->deferred = false;
}

void DeliveryTracker::requeue_all() {
  Requeued requeued;
  for (Entry& e : entries_) {
    if (e.done) continue;
    if (e.consumer != nullptr) --e.consumer->unacked;
    if (e.queue) {
      e.queue->delivery_settled();
      add_requeued(requeued, e.queue, std::move(e.message));
    }
  }
  entries_.clear();
  outstanding_ = 0;
  consumer_unacked_ = 0;
  apply_requeued(requeued);
}

void DeliveryTracker::consumer_gone(const Consumer* c) {
  for (Entry& e : entries_)
    if (e.consumer == c) e.consumer = nullptr;
}

void DeliveryTracker::compact() {
  while (!entries_.empty() && entries_.front().done) entries_.pop_front();
  if (entries_.size() > 64 && outstanding_ < entries_.size() / 2)
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                  [](const Entry& e) { return e.done; }),
                   entries_.end());
  // A ring grown for a large backlog of unacked deliveries goes back to its small size.
  if (entries_.capacity() > kKeptCapacity && entries_.size() < kKeptCapacity / 4)
    entries_.set_capacity(std::max<size_t>(kMinCapacity, entries_.size() * 2));
}

}  // namespace warren::broker
