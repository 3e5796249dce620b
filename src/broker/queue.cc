#include "broker/queue.h"

#include <algorithm>
#include <memory>

#include <spdlog/spdlog.h>

#include "broker/message_journal.h"

namespace warren::broker {

Queue::Queue(std::string vhost, std::string name, Options options, DispatchScheduler* scheduler)
    : vhost_(std::move(vhost)), name_(std::move(name)), options_(std::move(options)),
      scheduler_(scheduler) {}

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

void Queue::mark_deleted() {
  deleted_ = true;
  release_publishers_if_drained();
}

void Queue::release_publishers_if_drained() {
  if (blocked_publishers_.empty()) return;
  if (!deleted_ && !consumers_.empty() &&
      (ready_.size() > kFlowLowWater || ready_bytes_ > kFlowHighBytes / 2))
    return;
  std::vector<std::weak_ptr<FlowControlled>> blocked;
  blocked.swap(blocked_publishers_);
  for (auto& w : blocked)
    if (auto p = w.lock()) p->unblocked_by(*this);
}

Queue::Enqueued Queue::enqueue(MessageRef m) {
  Enqueued result;
  QueuedMessage qm;
  qm.msg = std::move(m);
  qm.seq = next_seq_++;
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
    unsynced_.push_back(UnsyncedRecord{journal_seq, qm.seq, page_out});
  }
  account_added(qm);
  ready_.push_back(std::move(qm));
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
    // ready_ is in seq order; the message may have been delivered meanwhile (then a failed
    // record is forgotten when the consumer acks it).
    auto it = std::lower_bound(ready_.begin(), ready_.end(), r.msg_seq,
                               [](const QueuedMessage& e, uint64_t s) { return e.seq < s; });
    if (it == ready_.end() || it->seq != r.msg_seq || !it->journaled()) continue;
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
      ready_.erase(it);
    }
  }
}

void Queue::settle_relocation(const UnsyncedRecord& r, bool synced) {
  auto it = std::lower_bound(ready_.begin(), ready_.end(), r.msg_seq,
                             [](const QueuedMessage& e, uint64_t s) { return e.seq < s; });
  bool here = it != ready_.end() && it->seq == r.msg_seq && it->pos == r.old_pos;
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
  for (QueuedMessage& m : ready_) {
    if (written >= max_bytes) break;
    if (!m.journaled() || m.relocating ||
        !std::binary_search(segments.begin(), segments.end(), m.pos.segment))
      continue;
    MessageRef body = m.msg ? m.msg : journal_->read(m.pos);
    if (!body) continue;  // unreadable: leave it where it is
    auto a = journal_->relocate(journal_id(m), m.seq, *body);
    if (a.error) break;
    if (unsynced_.empty()) journal_->watch_syncs(QueueRef(this));
    UnsyncedRecord r{a.seq, m.seq};
    r.relocation = true;
    r.old_pos = m.pos;
    r.new_pos = a.pos;
    unsynced_.push_back(r);
    m.relocating = true;
    written += a.pos.size;
  }
  return written;
}

void Queue::account_added(const QueuedMessage& m) {
  if (m.msg) {
    ready_bytes_ += m.msg->body_size();
    ram_bytes_ += m.msg->body_size();
    ++ram_messages_;
  } else {
    ready_bytes_ += m.pos.size;
  }
}

void Queue::account_removed(const QueuedMessage& m) {
  if (m.msg) {
    ready_bytes_ -= m.msg->body_size();
    ram_bytes_ -= m.msg->body_size();
    --ram_messages_;
  } else {
    ready_bytes_ -= m.pos.size;
  }
}

bool Queue::take_front(QueuedMessage* out) {
  while (!ready_.empty()) {
    QueuedMessage m = std::move(ready_.front());
    ready_.pop_front();
    account_removed(m);
    if (!m.msg && journal_ != nullptr) m.msg = journal_->read(m.pos);
    if (!m.msg) {
      discard(m);
      continue;
    }
    *out = std::move(m);
    return true;
  }
  return false;
}

void Queue::collect_delivery_marks(std::vector<store::DeliveryMark>* out) const {
  for (const QueuedMessage& m : ready_)
    if (m.redelivered && m.journaled() && !m.paged_transient)
      out->push_back(store::DeliveryMark{options_.store_id, m.seq});
}

bool Queue::restore(uint64_t msg_id, const store::Position& pos, std::string_view record_body,
                    bool redelivered) {
  QueuedMessage qm;
  qm.seq = msg_id;
  qm.pos = pos;
  qm.redelivered = redelivered;
  if (!ram_full()) {
    qm.msg = MessageJournal::decode(record_body);
    if (!qm.msg) {
      spdlog::error("queue '{}' in vhost '{}': journal record {} is not a message; dropped", name_,
                    vhost_, msg_id);
      return false;
    }
  }
  account_added(qm);
  if (msg_id >= next_seq_) {
    next_seq_ = msg_id + 1;
    ready_.push_back(std::move(qm));
  } else {
    // Not expected (the journal is in publish order), but keep the queue sorted regardless.
    auto at = std::upper_bound(ready_.begin(), ready_.end(), msg_id,
                               [](uint64_t s, const QueuedMessage& e) { return s < e.seq; });
    ready_.insert(at, std::move(qm));
  }
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
  for (auto& m : messages) {
    m.redelivered = true;
    m.relocating = false;  // a copy still in flight is settled by its position
    account_added(m);
  }
  if (ready_.empty() || messages.back().seq < ready_.front().seq) {
    // The common case: everything requeued is older than what is ready.
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) ready_.push_front(std::move(*it));
  } else {
    std::deque<QueuedMessage> merged;
    std::merge(std::make_move_iterator(messages.begin()), std::make_move_iterator(messages.end()),
               std::make_move_iterator(ready_.begin()), std::make_move_iterator(ready_.end()),
               std::back_inserter(merged),
               [](const QueuedMessage& a, const QueuedMessage& b) { return a.seq < b.seq; });
    ready_.swap(merged);
  }
  if (!consumers_.empty()) request_dispatch();
}

QueuedMessage Queue::pop() {
  QueuedMessage m;
  if (!take_front(&m)) return {};
  ++delivered_total_;
  release_publishers_if_drained();
  return m;
}

size_t Queue::purge() {
  size_t n = ready_.size();
  for (const QueuedMessage& m : ready_) discard(m);
  ready_.clear();
  ready_.shrink_to_fit();
  ready_bytes_ = 0;
  ram_bytes_ = 0;
  ram_messages_ = 0;
  for (const UnsyncedRecord& r : unsynced_)
    if (r.relocation && journal_ != nullptr) journal_->abandon_relocation(r.new_pos);
  unsynced_.clear();
  release_publishers_if_drained();
  return n;
}

void Queue::add_consumer(Consumer* c) {
  consumers_.push_back(c);
  ever_had_consumer_ = true;
  if (!ready_.empty()) request_dispatch();
}

bool Queue::remove_consumer(Consumer* c) {
  auto it = std::find(consumers_.begin(), consumers_.end(), c);
  if (it == consumers_.end()) return false;
  size_t idx = static_cast<size_t>(it - consumers_.begin());
  consumers_.erase(it);
  if (rr_next_ > idx) --rr_next_;
  if (rr_next_ >= consumers_.size()) rr_next_ = 0;
  release_publishers_if_drained();
  return consumers_.empty() && options_.auto_delete;
}

Consumer* Queue::next_consumer() {
  size_t n = consumers_.size();
  for (size_t i = 0; i < n; ++i) {
    size_t idx = (rr_next_ + i) % n;
    Consumer* c = consumers_[idx];
    if (c->sink->can_deliver(*c)) {
      rr_next_ = (idx + 1) % n;
      return c;
    }
  }
  return nullptr;
}

size_t Queue::dispatch() {
  size_t delivered = 0;
  while (!ready_.empty() && !consumers_.empty()) {
    Consumer* c = next_consumer();
    if (c == nullptr) break;
    QueuedMessage m;
    if (!take_front(&m)) break;
    c->sink->deliver(*c, this, std::move(m));
    ++delivered;
    ++delivered_total_;
  }
  release_publishers_if_drained();
  return delivered;
}

void Queue::request_dispatch() {
  if (!dispatch_scheduled && scheduler_ != nullptr && !deleted_) scheduler_->schedule_dispatch(*this);
}

}  // namespace warren::broker
