#include "broker/broker.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace warren::broker {

Broker::Broker(boost::asio::io_context& io, Limits limits, auth::UserStore users,
               store::MetadataStore* metadata)
    : io_(io), limits_(limits), users_(std::move(users)), metadata_(metadata), alarm_timer_(io),
      disk_timer_(io),
      journal_(
          io, [this] { schedule_drain(); },
          [this](const store::Completion& c) { on_journal_synced(c); }),
      compaction_timer_(io),
      wakeup_timer_(io),
      trimmer_(io) {
  add_vhost("/");
}

Broker::~Broker() {
  // Dropping connections and queues below must not write acks: what was unacked comes back.
  journal_.close();
  connections_.clear();
  vhosts_.clear();
}

VHost* Broker::find_vhost(std::string_view name) {
  auto it = vhosts_.find(name);
  return it == vhosts_.end() ? nullptr : it->second.get();
}

VHost& Broker::add_vhost(std::string name) {
  auto& slot = vhosts_[name];
  if (!slot) {
    slot = std::make_unique<VHost>(name, this, metadata_, &journal_);
    slot->set_reply_consumers(&reply_consumers_);
    slot->set_delay_timer(this);
    if (tracing(name)) slot->start_tracing(node_name_);
  }
  return *slot;
}

void Broker::close_all_connections(std::string_view reason) {
  std::vector<std::shared_ptr<ClientConnection>> all;
  for (auto& [key, c] : connections_) all.push_back(c);
  for (auto& c : all) c->force_close(reason);
}

bool Broker::check_memory_alarm() {
  if (!memory_alarm_ && Message::live_bytes() > limits_.memory_high_watermark) {
    memory_alarm_ = true;
    spdlog::warn("memory alarm set: messages use {} bytes, watermark {}; blocking publishers",
                 Message::live_bytes(), limits_.memory_high_watermark);
    watch_memory_alarm();
  }
  return memory_alarm_;
}

void Broker::watch_memory_alarm() {
  alarm_timer_.expires_after(std::chrono::milliseconds(50));
  alarm_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (Message::live_bytes() > limits_.memory_high_watermark) return watch_memory_alarm();
    memory_alarm_ = false;
    spdlog::info("memory alarm cleared: messages use {} bytes", Message::live_bytes());
    notify_alarms_cleared();
  });
}

void Broker::notify_alarms_cleared() {
  if (memory_alarm_ || disk_alarm_) return;
  std::vector<std::shared_ptr<ClientConnection>> all;
  for (auto& [key, c] : connections_) all.push_back(c);
  for (auto& c : all) c->alarms_cleared();
}

void Broker::watch_disk(std::string dir) {
  if (limits_.disk_free_limit == 0) return;
  disk_dir_ = std::move(dir);
  check_disk();
}

void Broker::check_disk() {
  update_disk_alarm();
  disk_timer_.expires_after(std::chrono::seconds(1));
  disk_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check_disk();
  });
}

void Broker::update_disk_alarm() {
  disk_checked_at_ = journal_.bytes_appended();
  struct statvfs st {};
  if (::statvfs(disk_dir_.c_str(), &st) == 0) {
    uint64_t free = uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
    if (!disk_alarm_ && free < limits_.disk_free_limit) {
      disk_alarm_ = true;
      spdlog::warn("disk alarm set: {} bytes free in {}, limit {}; blocking publishers", free,
                   disk_dir_, limits_.disk_free_limit);
    } else if (disk_alarm_ && free >= limits_.disk_free_limit) {
      disk_alarm_ = false;
      spdlog::info("disk alarm cleared: {} bytes free in {}", free, disk_dir_);
      notify_alarms_cleared();
    }
  }
}

std::error_code Broker::open_journal(store::MessageStoreOptions options,
                                     store::RecoveryReport* report) {
  std::unordered_map<uint64_t, Queue*> by_store_id;
  for (auto& [name, vhost] : vhosts_)
    for (auto& [qname, q] : vhost->queues())
      if (q->options().store_id != 0) by_store_id.emplace(q->options().store_id, q.get());
  // Delayed exchanges' records name their exchange (delayed_exchange.h).
  size_t delayed = 0;
  auto adopt_delayed = [&](const store::RecoveredMessage& r) {
    if (r.queue_id != DelayStore::kJournalId) return false;
    bool adopted = DelayStore::recover(r, [&](std::string_view vhost, std::string_view x) {
      VHost* v = find_vhost(vhost);
      Exchange* e = v ? v->find_exchange(x) : nullptr;
      return e ? e->delay_store() : nullptr;
    });
    delayed += adopted;
    return adopted;
  };
  // A purge's ack records are freed in steps once synced (memory_trimmer.h).
  if (!options.dispose) options.dispose = [this](auto step) { trimmer_.dispose(std::move(step)); };
  std::error_code ec = journal_.open(std::move(options), [&](uint64_t id) -> Queue* {
    auto it = by_store_id.find(id);
    return it == by_store_id.end() ? nullptr : it->second;
  }, report, adopt_delayed);
  if (!ec && delayed > 0) spdlog::info("message store: {} delayed messages restored", delayed);
  // Restored messages over a queue's limit (a policy set while stopped) go now (vhost.h).
  if (!ec)
    for (auto& [name, vhost] : vhosts_) vhost->apply_policies();
  if (!ec) schedule_compaction();
  return ec;
}

void Broker::schedule_compaction() {
  compaction_timer_.expires_after(std::chrono::seconds(2));
  compaction_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !journal_.is_open()) return;
    compact_journal();
    schedule_compaction();
  });
}

void Broker::compact_journal() {
  std::vector<uint32_t> sparse = journal_.sparse_segments();
  if (sparse.empty()) return;
  // Bounded per pass, so a big compaction is spread over several turns of 2 s.
  constexpr uint64_t kMaxBytesPerPass = uint64_t{32} << 20;
  uint64_t copied = 0;
  for (auto& [name, vhost] : vhosts_)
    for (auto& [qname, q] : vhost->queues())
      if (copied < kMaxBytesPerPass) copied += q->relocate_from(sparse, kMaxBytesPerPass - copied);
  if (copied > 0)
    spdlog::info("message store: compaction copied {} bytes of live messages out of {} sparse "
                 "segment(s) ({}..{})",
                 copied, sparse.size(), sparse.front(), sparse.back());
}

void Broker::close_journal() {
  if (!connections_.empty()) {
    journal_.close();  // deliveries still held by connections: flag everything after restart
    return;
  }
  std::vector<store::DeliveryMark> marks;
  for (auto& [name, vhost] : vhosts_)
    for (auto& [qname, q] : vhost->queues())
      if (q->options().store_id != 0) q->collect_delivery_marks(&marks);
  journal_.close(&marks);
}

void Broker::wait_for_journal(JournalWaiter* w) {
  if (std::find(journal_waiters_.begin(), journal_waiters_.end(), w) == journal_waiters_.end())
    journal_waiters_.push_back(w);
}

void Broker::stop_waiting_for_journal(JournalWaiter* w) {
  auto it = std::find(journal_waiters_.begin(), journal_waiters_.end(), w);
  if (it == journal_waiters_.end()) return;
  if (notifying_waiters_) {
    *it = nullptr;
  } else {
    journal_waiters_.erase(it);
  }
}

void Broker::on_journal_synced(const store::Completion& c) {
  if (c.error)
    spdlog::error("message store: writing journal seqs {}-{} failed: {}; their publishes are "
                  "nacked",
                  c.first_seq, c.last_seq, c.error.message());
  notifying_waiters_ = true;
  // Waiters added while notifying (appended at the end) are not due yet: stop at the old size.
  size_t n = journal_waiters_.size();
  for (size_t i = 0; i < n; ++i) {
    JournalWaiter* w = journal_waiters_[i];
    if (w != nullptr && !w->journal_synced(c) && journal_waiters_[i] == w)
      journal_waiters_[i] = nullptr;
  }
  notifying_waiters_ = false;
  std::erase(journal_waiters_, nullptr);
  if (journal_backlogged_ && journal_.unsynced_bytes() < kJournalLowWater) {
    journal_backlogged_ = false;
    spdlog::info("message store: {} bytes wait for the disk; resuming publishers",
                 journal_.unsynced_bytes());
    std::vector<std::shared_ptr<ClientConnection>> all;
    for (auto& [key, conn] : connections_) all.push_back(conn);
    for (auto& conn : all) conn->reading_may_resume();
  }
}

void Broker::schedule_dispatch(Queue& q) {
  q.dispatch_scheduled = true;
  dirty_queues_.emplace_back(&q);
  schedule_drain();
}

void Broker::schedule_wakeup(Queue& q, uint64_t at_ms) {
  add_wakeup(Wakeup{at_ms, QueueRef(&q), {}});
  if (wakeup_timer_at_ == 0 || at_ms < wakeup_timer_at_) arm_wakeup_timer();
}

void Broker::schedule_wakeup(DelayStore& s, uint64_t at_ms) {
  add_wakeup(Wakeup{at_ms, QueueRef(), Ref<DelayStore>(&s)});
  if (wakeup_timer_at_ == 0 || at_ms < wakeup_timer_at_) arm_wakeup_timer();
}

void Broker::add_wakeup(Wakeup w) {
  wakeups_.push_back(std::move(w));
  std::push_heap(wakeups_.begin(), wakeups_.end(), std::greater<Wakeup>());
  if (wakeups_.size() >= wakeups_compact_at_) drop_stale_wakeups();
}

void Broker::drop_stale_wakeups() {
  std::erase_if(wakeups_, [](const Wakeup& w) {
    if (w.queue) return w.queue->deleted() || w.at_ms != w.queue->pending_wakeup();
    return w.delays->detached();
  });
  std::make_heap(wakeups_.begin(), wakeups_.end(), std::greater<Wakeup>());
  // Amortized: the next pass once the heap has doubled again.
  wakeups_compact_at_ = std::max(kWakeupsCompactMin, 2 * wakeups_.size());
}

void Broker::arm_wakeup_timer() {
  if (wakeups_.empty()) {
    wakeup_timer_at_ = 0;
    return;
  }
  wakeup_timer_at_ = wakeups_.front().at_ms;
  uint64_t now = steady_now_ms();
  auto delay = std::chrono::milliseconds(wakeup_timer_at_ > now ? wakeup_timer_at_ - now : 0);
  wakeup_timer_.expires_after(delay);
  wakeup_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_wakeup_timer();
  });
}

void Broker::on_wakeup_timer() {
  uint64_t now = steady_now_ms();
  // Queues due now; each schedules its own next wakeup from what it finds.
  std::vector<QueueRef> due;
  std::vector<Ref<DelayStore>> due_delays;
  while (!wakeups_.empty() && wakeups_.front().at_ms <= now) {
    std::pop_heap(wakeups_.begin(), wakeups_.end(), std::greater<Wakeup>());
    Wakeup& w = wakeups_.back();
    if (w.queue)
      due.push_back(std::move(w.queue));
    else
      due_delays.push_back(std::move(w.delays));
    wakeups_.pop_back();
  }
  wakeup_timer_at_ = 0;
  for (QueueRef& q : due)
    if (!q->deleted()) q->wake_up();
  for (Ref<DelayStore>& d : due_delays)
    if (!d->detached()) d->wake_up();
  if (wakeup_timer_at_ == 0) arm_wakeup_timer();
}

void Broker::schedule_flush(std::shared_ptr<OutputFlusher> f) {
  if (f->flush_scheduled) return;
  f->flush_scheduled = true;
  dirty_flushers_.push_back(std::move(f));
  schedule_drain();
}

void Broker::schedule_drain() {
  if (drain_scheduled_) return;
  drain_scheduled_ = true;
  boost::asio::post(io_, [this] { drain(); });
}

void Broker::drain() {
  drain_scheduled_ = false;
  dispatching_.swap(dirty_queues_);
  for (QueueRef& q : dispatching_) {
    q->dispatch_scheduled = false;
    if (!q->deleted()) q->dispatch();
  }
  dispatching_.clear();
  // The turn's journal records go to the sync thread before sockets are written.
  journal_.flush();
  // Besides the timer, check the disk after every quarter of the limit written, so a fast
  // publisher cannot fill the remaining space between two checks.
  if (!disk_dir_.empty() && journal_.bytes_appended() - disk_checked_at_ > limits_.disk_free_limit / 4)
    update_disk_alarm();
  if (!journal_backlogged_ && journal_.unsynced_bytes() > kJournalHighWater) {
    journal_backlogged_ = true;
    spdlog::info("message store: {} bytes wait for the disk; pausing publishers",
                 journal_.unsynced_bytes());
  }
  flushing_.swap(dirty_flushers_);
  for (auto& f : flushing_) {
    f->flush_scheduled = false;
    f->flush_output();
  }
  flushing_.clear();
}

}  // namespace warren::broker
