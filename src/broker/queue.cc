#include "broker/queue.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "broker/dead_letter.h"
#include "broker/firehose.h"
#include "broker/memory_trimmer.h"
#include "broker/message_journal.h"
#include "broker/vhost.h"

namespace warren::broker {

uint64_t steady_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Inline, tested before each delivery: the whole cost of the firehose while it is off (the
// receiver's identity, a virtual call, is asked only while it is on).
inline bool Queue::traced() const { return owner_ != nullptr && owner_->firehose() != nullptr; }

Queue::Queue(std::string vhost, std::string name, Options options, DispatchScheduler* scheduler)
    : vhost_(std::move(vhost)), name_(std::move(name)), options_(std::move(options)),
      scheduler_(scheduler),
      settings_(QueueSettings::from_arguments(options_.arguments)),
      ready_(settings_.max_priority) {
  touch();
}

Ref<Queue> Queue::create(std::string vhost, std::string name, Options options,
                         DispatchScheduler* scheduler) {
  auto q = std::make_unique<Queue>(std::move(vhost), std::move(name), std::move(options), scheduler);
  Ref<Queue> ref(q.get());
  q.release();  // now owned by the reference count; destroy() frees it
  return ref;
}

void Queue::destroy(Queue* q) { std::unique_ptr<Queue> owned(q); }

bool Queue::has_consumer_on(uint64_t connection_id) const {
  for (const Consumer* c : consumers_)
    if (c->connection_id == connection_id) return true;
  return false;
}

bool Queue::has_exclusive_consumer() const {
  return consumers_.size() == 1 && consumers_.front()->exclusive;
}

void Queue::count_into(QueueTotals* totals) {
  if (totals_ != nullptr) {
    totals_->unacked -= static_cast<int64_t>(unacked_);
    totals_->consumers -= static_cast<int64_t>(consumers_.size());
    totals_->ready_bytes -= static_cast<int64_t>(ready_bytes_);
  }
  totals_ = totals;
  ready_.count_into(totals != nullptr ? &totals->ready : nullptr);
  if (totals_ != nullptr) {
    totals_->unacked += static_cast<int64_t>(unacked_);
    totals_->consumers += static_cast<int64_t>(consumers_.size());
    totals_->ready_bytes += static_cast<int64_t>(ready_bytes_);
  }
}

void Queue::mark_deleted() {
  count_into(nullptr);  // before the vhost (and its totals) may go
  deleted_ = true;
  release_publishers_if_drained();
}

void Queue::block_publisher(std::weak_ptr<FlowControlled> p) {
  for (const auto& w : blocked_publishers_)
    if (!w.owner_before(p) && !p.owner_before(w)) return;
  blocked_publishers_.push_back(std::move(p));
}

void Queue::release_publishers_if_drained() {
  // A queue that held many messages gives their memory back once drained (memory_trimmer.h).
  if (size_t n = ready_.take_released(); n > 0 && scheduler_ != nullptr)
    if (MemoryTrimmer* t = scheduler_->memory_trimmer()) t->released(n * sizeof(QueuedMessage));
  if (blocked_publishers_.empty()) return;
  if (!deleted_ && !consumers_.empty() &&
      (ready_.size() > kFlowLowWater || ready_bytes_ > kFlowHighBytes / 2))
    return;
  std::vector<std::weak_ptr<FlowControlled>> blocked;
  blocked.swap(blocked_publishers_);
  for (auto& w : blocked)
    if (auto p = w.lock()) p->unblocked_by(*this);
}

uint64_t Queue::expiry_of(const Message& m, uint64_t now) const {
  // The lower of the queue's TTL and the message's own wins.
  int64_t ttl = settings_.message_ttl_ms ? static_cast<int64_t>(*settings_.message_ttl_ms) : -1;
  if (m.expiration_ms >= 0 && (ttl < 0 || m.expiration_ms < ttl)) ttl = m.expiration_ms;
  if (ttl < 0) return 0;
  return now + static_cast<uint64_t>(ttl);
}

bool Queue::over_limit(size_t extra_messages, uint64_t extra_bytes) const {
  return (settings_.max_length && ready_.size() + extra_messages > *settings_.max_length) ||
         (settings_.max_length_bytes && ready_bytes_ + extra_bytes > *settings_.max_length_bytes);
}

Queue::Enqueued Queue::enqueue(MessageRef m) {
  Enqueued result;
  // Only ready messages count against the length limit, and in RabbitMQ a message never waits
  // while a consumer could take it: consumers get what they can take before the limit applies.
  bool limited = settings_.max_length || settings_.max_length_bytes;
  if (limited && !consumers_.empty() && !ready_.empty() && over_limit(1, m->body_size()))
    dispatch();
  if (settings_.overflow != Overflow::kDropHead && over_limit(1, m->body_size())) {
    // reject-publish: the publisher gets a nack; reject-publish-dlx also dead-letters it.
    result.rejected = true;
    if (settings_.overflow == Overflow::kRejectPublishDlx) {
      QueuedMessage refused;
      refused.msg = std::move(m);
      dead_letter(std::move(refused), DeadLetterReason::kMaxLen);
    }
    return result;
  }
  ++stats_.counts.publish;
  QueuedMessage qm;
  qm.msg = std::move(m);
  qm.seq = next_seq_++;
  qm.priority = ready_.cap(qm.msg->priority);
  bool ttl_zero = false;
  if (settings_.message_ttl_ms || qm.msg->expiration_ms >= 0) {
    uint64_t now = steady_now_ms();
    qm.expires_at = expiry_of(*qm.msg, now);
    ttl_zero = qm.expires_at == now;  // handled below, before this call returns
    // Never early: the clock counts whole milliseconds.
    if (qm.expires_at != 0) qm.expires_at += 1;
  }
  bool page_out = ram_full() && journal_ != nullptr;
  if (qm.msg->delivery_mode == 2 && persists_messages()) {
    auto a = journal_->append(options_.store_id, qm.seq, *qm.msg);
    if (a.error) {
      result.journal_failed = true;
      page_out = false;
    } else {
      qm.pos = a.pos;
      result.journal_seq = a.seq;
    }
  }
  // Over the RAM budget, a message is kept on disk only. A transient message is written to the
  // journal for that alone (its confirm does not wait for the write).
  uint64_t journal_seq = result.journal_seq;
  if (page_out && !qm.journaled()) {
    if (page_id_ == 0) page_id_ = journal_->next_page_id();
    auto a = journal_->append(page_id_, qm.seq, *qm.msg);
    if (a.error) {
      page_out = false;
    } else {
      qm.pos = a.pos;
      qm.paged_transient = true;
      journal_seq = a.seq;
    }
  }
  if (journal_seq != 0) {
    // Until the record is synced the body stays in RAM, and a failed write is handled in
    // journal_synced().
    if (unsynced_.empty()) journal_->watch_syncs(QueueRef(this));
    unsynced_.push_back(UnsyncedRecord{journal_seq, qm.seq, qm.priority, page_out});
  }
  bool expires = qm.expires_at != 0;
  may_expire_ |= expires;
  if (ttl_zero && !consumers_.empty()) {
    // TTL 0: delivered now to a consumer that can take it (after what is ready, in order)...
    if (!ready_.empty()) dispatch();
    if (Consumer* c = ready_.empty() ? next_consumer() : nullptr) {
      ++delivered_total_;
      if (traced()) [[unlikely]] trace_delivery(qm, c->sink->identity());
      c->sink->deliver(*c, this, std::move(qm));
      return result;
    }
  }
  uint64_t seq = qm.seq;
  uint8_t priority = qm.priority;
  account_added(qm);
  ready_.push_back(std::move(qm));
  if (limited) {
    if (!consumers_.empty() && over_limit(0, 0)) dispatch();
    drop_over_limit();
    head_may_expire();
  }
  if (ttl_zero) {
    // ... else it expires now (at the head; behind a message without a TTL it waits, expired).
    uint64_t now = steady_now_ms();
    if (QueuedMessage* left = ready_.find(seq, priority)) left->expires_at = now;
    expire_heads(now);
  }
  if (expires) schedule_wakeup();
  if (!consumers_.empty()) request_dispatch();
  return result;
}

void Queue::journal_synced(const store::Completion& c) {
  while (!unsynced_.empty() && unsynced_.front().journal_seq <= c.last_seq) {
    UnsyncedRecord r = unsynced_.front();
    unsynced_.pop_front();
    if (r.relocation) {
      settle_relocation(r, !c.error);
      continue;
    }
    // The message may have been delivered meanwhile (then a failed record is forgotten when the
    // consumer acks it).
    QueuedMessage* it = ready_.find(r.msg_seq, r.priority);
    if (it == nullptr || !it->journaled()) continue;
    if (!c.error) {
      if (r.page_out && it->msg) {  // the body can now leave RAM
        account_removed(*it);
        it->msg.reset();
        account_added(*it);
      }
    } else if (it->paged_transient) {
      // Not readable from disk: the message simply stays in RAM.
      journal_->remove(page_id_, it->seq, it->pos);
      it->pos = {};
      it->paged_transient = false;
    } else {
      // A persistent publish the journal could not store is nacked to its publisher, so it must
      // not be delivered either (the publisher will send it again). The ack record makes sure a
      // copy that did reach the disk does not come back.
      account_removed(*it);
      discard(*it);
      ready_.erase(r.msg_seq, r.priority);
    }
  }
}

void Queue::settle_relocation(const UnsyncedRecord& r, bool synced) {
  QueuedMessage* it = ready_.find(r.msg_seq, r.priority);
  bool here = it != nullptr && it->pos == r.old_pos;
  if (here) it->relocating = false;
  if (synced && here) {
    it->pos = r.new_pos;
    journal_->finish_relocation(r.old_pos, r.new_pos);
  } else {
    // Failed, or the message left (it is acked through the position it was delivered with).
    journal_->abandon_relocation(r.new_pos);
  }
}

uint64_t Queue::relocate_from(const std::vector<uint32_t>& segments, uint64_t max_bytes) {
  if (journal_ == nullptr || segments.empty()) return 0;
  uint64_t written = 0;
  bool failed = false;
  ready_.for_each([&](QueuedMessage& m) {
    if (failed || written >= max_bytes) return;
    if (!m.journaled() || m.relocating ||
        !std::binary_search(segments.begin(), segments.end(), m.pos.segment))
      return;
    MessageRef body = m.msg ? m.msg : journal_->read(m.pos);
    if (!body) return;  // unreadable: leave it where it is
    auto a = journal_->relocate(journal_id(m), m.seq, *body);
    if (a.error) {
      failed = true;
      return;
    }
    if (unsynced_.empty()) journal_->watch_syncs(QueueRef(this));
    UnsyncedRecord r{a.seq, m.seq, m.priority};
    r.relocation = true;
    r.old_pos = m.pos;
    r.new_pos = a.pos;
    unsynced_.push_back(r);
    m.relocating = true;
    written += a.pos.size;
  });
  return written;
}

void Queue::account_added(const QueuedMessage& m) {
  uint64_t bytes = m.msg ? m.msg->body_size() : m.pos.size;
  ready_bytes_ += bytes;
  if (totals_ != nullptr) totals_->ready_bytes += static_cast<int64_t>(bytes);
  if (m.msg) {
    ram_bytes_ += m.msg->body_size();
    ++ram_messages_;
  }
}

void Queue::account_removed(const QueuedMessage& m) {
  uint64_t bytes = m.msg ? m.msg->body_size() : m.pos.size;
  ready_bytes_ -= bytes;
  if (totals_ != nullptr) totals_->ready_bytes -= static_cast<int64_t>(bytes);
  if (m.msg) {
    ram_bytes_ -= m.msg->body_size();
    --ram_messages_;
  }
}

bool Queue::take_front(QueuedMessage* out) {
  if (may_expire_ && !ready_.empty() && ready_.front().expires_at != 0)
    expire_heads(steady_now_ms());
  while (!ready_.empty()) {
    QueuedMessage m = ready_.take_front();
    account_removed(m);
    if (!m.msg && journal_ != nullptr) m.msg = journal_->read(m.pos);
    if (!m.msg) {
      discard(m);
      continue;
    }
    *out = std::move(m);
    head_may_expire();
    return true;
  }
  return false;
}

void Queue::collect_delivery_marks(std::vector<store::DeliveryMark>* out) const {
  ready_.for_each([&](const QueuedMessage& m) {
    if (m.redelivered && m.journaled() && !m.paged_transient)
      out->push_back(store::DeliveryMark{options_.store_id, m.seq});
  });
}

bool Queue::restore(uint64_t msg_id, const store::Position& pos, std::string_view record_body,
                    bool redelivered) {
  QueuedMessage qm;
  qm.seq = msg_id;
  qm.pos = pos;
  qm.redelivered = redelivered;
  // Priority and TTL live in the message's properties: a queue that uses them, or a message with
  // its own expiration, is decoded, and keeps its body only within the RAM budget.
  bool needs_properties = ready_.max_priority() > 0 || settings_.message_ttl_ms.has_value() ||
                          MessageJournal::has_expiration(record_body);
  if (!ram_full() || needs_properties) {
    MessageRef m = MessageJournal::decode(record_body);
    if (!m) {
      spdlog::error("queue '{}' in vhost '{}': journal record {} is not a message; dropped", name_,
                    vhost_, msg_id);
      return false;
    }
    qm.priority = ready_.cap(m->priority);
    // The TTL counts again from recovery: the journal keeps no enqueue time.
    if (settings_.message_ttl_ms || m->expiration_ms >= 0)
      qm.expires_at = expiry_of(*m, steady_now_ms());
    if (!ram_full()) qm.msg = std::move(m);
  }
  account_added(qm);
  bool expires = qm.expires_at != 0;
  may_expire_ |= expires;
  if (msg_id >= next_seq_) next_seq_ = msg_id + 1;
  ready_.insert_sorted(std::move(qm));
  if (expires) schedule_wakeup();  // once it is in: it may be the head
  return true;
}

void Queue::forget_in_journal(const QueuedMessage& m) {
  if (journal_ != nullptr) journal_->remove(journal_id(m), m.seq, m.pos);
}

void Queue::requeue(std::vector<QueuedMessage> messages) {
  if (messages.empty()) return;
  if (deleted_) {
    for (const QueuedMessage& m : messages) discard(m);
    return;
  }
  std::sort(messages.begin(), messages.end(),
            [](const QueuedMessage& a, const QueuedMessage& b) { return a.seq < b.seq; });
  bool expires = false;
  for (auto& m : messages) {
    m.redelivered = true;
    m.relocating = false;  // a copy still in flight is settled by its position
    expires |= m.expires_at != 0;  // a requeued message keeps its original expiry
    account_added(m);
  }
  may_expire_ |= expires;
  ready_.merge(messages);
  // As RabbitMQ (requeue_and_run): over the limit, drop-head drops from the head (the requeued
  // messages first) before consumers get anything; reject-publish lets the queue stay over.
  if ((settings_.max_length || settings_.max_length_bytes) &&
      settings_.overflow == Overflow::kDropHead) {
    drop_over_limit();
    expires = true;  // the head may have changed
  }
  if (expires) schedule_wakeup();
  if (!consumers_.empty()) request_dispatch();
}

QueuedMessage Queue::pop(const ClientIdentity* receiver) {
  touch();
  QueuedMessage m;
  if (!take_front(&m)) return {};
  if (traced()) [[unlikely]] trace_delivery(m, receiver);
  ++delivered_total_;
  release_publishers_if_drained();
  return m;
}

size_t Queue::purge() {
  size_t n = ready_.size();
  ready_.for_each([&](const QueuedMessage& m) { discard(m); });
  ready_.clear(scheduler_ != nullptr ? scheduler_->memory_trimmer() : nullptr);  // in steps
  if (totals_ != nullptr) totals_->ready_bytes -= static_cast<int64_t>(ready_bytes_);
  ready_bytes_ = 0;
  ram_bytes_ = 0;
  ram_messages_ = 0;
  for (const UnsyncedRecord& r : unsynced_)
    if (r.relocation && journal_ != nullptr) journal_->abandon_relocation(r.new_pos);
  std::deque<UnsyncedRecord>().swap(unsynced_);  // its map too (memory_trimmer.h)
  release_publishers_if_drained();
  return n;
}

void Queue::add_consumer(Consumer* c) {
  if (settings_.single_active_consumer) {
    // The first consumer is active (whatever its priority); the others wait in registration
    // order (remove_consumer picks the next).
    consumers_.push_back(c);
  } else {
    // Highest priority first; registration order within a priority.
    auto at = std::find_if(consumers_.begin(), consumers_.end(),
                           [&](const Consumer* o) { return o->priority < c->priority; });
    size_t idx = static_cast<size_t>(at - consumers_.begin());
    consumers_.insert(at, c);
    if (rr_next_ > idx) ++rr_next_;
  }
  if (totals_ != nullptr) ++totals_->consumers;
  touch();
  ever_had_consumer_ = true;
  if (!ready_.empty()) request_dispatch();
}

bool Queue::remove_consumer(Consumer* c) {
  auto it = std::find(consumers_.begin(), consumers_.end(), c);
  if (it == consumers_.end()) return false;
  size_t idx = static_cast<size_t>(it - consumers_.begin());
  consumers_.erase(it);
  if (totals_ != nullptr) --totals_->consumers;
  if (rr_next_ > idx) --rr_next_;
  if (rr_next_ >= consumers_.size()) rr_next_ = 0;
  if (consumers_.empty()) touch();
  if (settings_.single_active_consumer && idx == 0 && !consumers_.empty()) {
    // The active consumer went: as RabbitMQ, the highest-priority consumer takes over, the
    // earliest registered among equals.
    auto next = consumers_.begin();
    for (auto i = consumers_.begin(); i != consumers_.end(); ++i)
      if ((*i)->priority > (*next)->priority) next = i;
    std::rotate(consumers_.begin(), next, next + 1);
  }
  if (!consumers_.empty() && !ready_.empty()) request_dispatch();
  release_publishers_if_drained();
  return consumers_.empty() && options_.auto_delete;
}

Consumer* Queue::single_active_consumer() const {
  return consumers_.empty() ? nullptr : consumers_.front();
}

Consumer* Queue::next_consumer() {
  if (settings_.single_active_consumer) {
    Consumer* active = consumers_.front();
    return active->sink->can_deliver(*active) ? active : nullptr;
  }
  // consumers_ is sorted by priority: round robin within the highest priority that has a
  // consumer able to take a message now (a prefetch-full high-priority consumer lets lower ones
  // receive).
  size_t n = consumers_.size();
  for (size_t begin = 0; begin < n;) {
    int64_t prio = consumers_[begin]->priority;
    size_t end = begin;
    while (end < n && consumers_[end]->priority == prio) ++end;
    size_t width = end - begin;
    size_t start = (rr_next_ >= begin && rr_next_ < end) ? rr_next_ - begin : 0;
    for (size_t i = 0; i < width; ++i) {
      size_t idx = begin + (start + i) % width;
      Consumer* c = consumers_[idx];
      if (c->sink->can_deliver(*c)) {
        rr_next_ = begin + (idx - begin + 1) % width;
        return c;
      }
    }
    begin = end;
  }
  return nullptr;
}

size_t Queue::dispatch() {
  size_t delivered = 0;
  if (may_expire_ && !ready_.empty() && ready_.front().expires_at != 0)
    expire_heads(steady_now_ms());
  // Tested once per dispatch, not per message: tracing is switched between loop turns only.
  const bool traced = this->traced();
  while (!ready_.empty() && !consumers_.empty()) {
    Consumer* c = next_consumer();
    if (c == nullptr) break;
    QueuedMessage m;
    if (!take_front(&m)) break;
    if (traced) [[unlikely]] trace_delivery(m, c->sink->identity());
    c->sink->deliver(*c, this, std::move(m));
    ++delivered;
    ++delivered_total_;
  }
  release_publishers_if_drained();
  return delivered;
}

void Queue::trace_delivery(const QueuedMessage& m, const ClientIdentity* receiver) const {
  owner_->firehose()->delivered(*this, m, receiver);
}

void Queue::request_dispatch() {
  if (!dispatch_scheduled && scheduler_ != nullptr && !deleted_) scheduler_->schedule_dispatch(*this);
}

}  // namespace warren::broker

namespace warren::broker {

bool Queue::expire_heads(uint64_t now) {
  bool any = false;
  std::vector<QueuedMessage> expired;
  ready_.for_each_level([&](std::deque<QueuedMessage>& level) {
    while (!level.empty() && level.front().expires_at != 0 && level.front().expires_at <= now) {
      account_removed(level.front());
      expired.push_back(std::move(level.front()));
      ready_.pop_front_of(level);
      any = true;
    }
  });
  // Dead-lettered once the queue is consistent again (the DLX may route back here).
  for (QueuedMessage& m : expired) dead_letter(std::move(m), DeadLetterReason::kExpired);
  if (any) release_publishers_if_drained();
  return any;
}

void Queue::head_may_expire() {
  if (!may_expire_ || ready_.empty()) return;
  uint64_t e = ready_.front().expires_at;
  if (e != 0 && (wakeup_at_ == 0 || e < wakeup_at_)) schedule_wakeup();
}

void Queue::touch() {
  if (!settings_.expires_ms) return;
  last_used_ms_ = steady_now_ms();
  schedule_wakeup();
}

void Queue::schedule_wakeup() {
  if (scheduler_ == nullptr || deleted_) return;
  uint64_t at = 0;
  ready_.for_each_level([&](std::deque<QueuedMessage>& level) {
    uint64_t e = level.front().expires_at;
    if (e != 0 && (at == 0 || e < at)) at = e;
  });
  if (settings_.expires_ms && consumers_.empty()) {
    uint64_t e = last_used_ms_ + *settings_.expires_ms;
    if (at == 0 || e < at) at = e;
  }
  if (at == 0) return;
  // One pending wakeup at a time, unless an earlier one is needed (the broker's timer drops the
  // later one's effect: wake_up() reschedules from the state it finds).
  uint64_t now = steady_now_ms();
  if (wakeup_at_ != 0 && wakeup_at_ <= at && wakeup_at_ >= now) return;
  wakeup_at_ = at;
  scheduler_->schedule_wakeup(*this, at);
}

void Queue::wake_up() {
  if (deleted_) return;
  wakeup_at_ = 0;
  uint64_t now = steady_now_ms();
  // A queue of expired messages drains on its own, with nobody consuming.
  expire_heads(now);
  if (settings_.expires_ms && consumers_.empty() && now >= last_used_ms_ + *settings_.expires_ms &&
      owner_ != nullptr) {
    spdlog::debug("queue '{}' in vhost '{}' expired (unused for {} ms)", name_, vhost_,
                  *settings_.expires_ms);
    owner_->remove_queue(this);
    return;
  }
  schedule_wakeup();
}

void Queue::apply_settings(const QueueSettings& s) {
  if (deleted_) return;
  bool expires_changed = s.expires_ms != settings_.expires_ms;
  QueueSettings next = s;
  next.max_priority = settings_.max_priority;
  next.single_active_consumer = settings_.single_active_consumer;
  settings_ = std::move(next);
  if (expires_changed) last_used_ms_ = steady_now_ms();
  if ((settings_.max_length || settings_.max_length_bytes) &&
      settings_.overflow == Overflow::kDropHead)
    drop_over_limit();
  release_publishers_if_drained();
  schedule_wakeup();
}

void Queue::drop_over_limit() {
  while (!ready_.empty() && over_limit(0, 0)) {
    // drop-head: as RabbitMQ, the head is the message that would be delivered next, i.e. the
    // oldest of the highest priority (even the message just published).
    QueuedMessage m = ready_.take_front();
    account_removed(m);
    dead_letter(std::move(m), DeadLetterReason::kMaxLen);
  }
  release_publishers_if_drained();
}

void Queue::reject(QueuedMessage&& m) {
  if (deleted_) {
    discard(m);
    return;
  }
  dead_letter(std::move(m), DeadLetterReason::kRejected);
}

void Queue::dead_letter(QueuedMessage&& m, DeadLetterReason reason) {
  bool dead_letters = settings_.dead_letter_exchange.has_value() && owner_ != nullptr;
  // A paged-out body is read back before its record is forgotten.
  if (dead_letters && !m.msg && journal_ != nullptr) m.msg = journal_->read(m.pos);
  discard(m);  // the message leaves this queue for good either way
  if (!dead_letters || !m.msg) return;
  dead_letter_publish(*owner_, *m.msg, reason, name_, *settings_.dead_letter_exchange,
                      settings_.dead_letter_routing_key);
}

}  // namespace warren::broker
