#include "broker/message_journal.h"

#include <boost/asio/post.hpp>
#include <cstring>
#include <spdlog/spdlog.h>

#include "common/basic_properties.h"
#include "broker/delayed_exchange.h"
#include "broker/queue.h"

namespace warren::broker {

namespace {

constexpr size_t kHeaderSize = 6;  // u8 exchange len, u8 routing key len, u32 properties len

struct OrphanRecord {
  uint64_t queue_id;
  uint64_t msg_id;
  store::Position pos;
};

}  // namespace

MessageJournal::MessageJournal(boost::asio::io_context& io, std::function<void()> on_dirty,
                               std::function<void(const store::Completion&)> on_synced)
    : io_(io), on_dirty_(std::move(on_dirty)), on_synced_(std::move(on_synced)),
      alive_(std::make_shared<bool>(true)), ack_retry_timer_(io) {}

MessageJournal::~MessageJournal() { close(); }

std::string MessageJournal::encode_header(const Message& m) {
  std::string h(kHeaderSize, '\0');
  h[0] = static_cast<char>(m.exchange().size());
  h[1] = static_cast<char>(m.routing_key().size());
  uint32_t props = static_cast<uint32_t>(m.raw_properties().size());
  std::memcpy(h.data() + 2, &props, 4);
  return h;
}

MessageRef MessageJournal::decode(std::string_view body) {
  if (body.size() < kHeaderSize) return {};
  size_t exchange = static_cast<uint8_t>(body[0]);
  size_t routing_key = static_cast<uint8_t>(body[1]);
  uint32_t props = 0;
  std::memcpy(&props, body.data() + 2, 4);
  body.remove_prefix(kHeaderSize);
  if (body.size() < exchange + routing_key + props) return {};
  std::string_view x = body.substr(0, exchange);
  std::string_view rk = body.substr(exchange, routing_key);
  std::string_view raw_props = body.substr(exchange + routing_key, props);
  std::string_view payload = body.substr(exchange + routing_key + props);
  MessageRef m = Message::create(x, rk, raw_props, payload.size());
  m->append_body(payload);
  Reader r(raw_props);
  BasicProperties p;
  if (p.decode(r)) {
    if (p.has_delivery_mode()) m->delivery_mode = p.delivery_mode;
    if (p.has_priority()) m->priority = p.priority;
    // After a restart the per-message TTL counts again from recovery (the journal keeps no
    // enqueue time).
    int64_t ms;
    std::string reason;
    if (p.has_expiration() && parse_expiration(p.expiration, &ms, &reason)) m->expiration_ms = ms;
  }
  return m;
}

bool MessageJournal::has_expiration(std::string_view body) {
  if (body.size() < kHeaderSize) return false;
  size_t names = size_t{static_cast<uint8_t>(body[0])} + static_cast<uint8_t>(body[1]);
  uint32_t props = 0;
  std::memcpy(&props, body.data() + 2, 4);
  if (props < 2 || body.size() < kHeaderSize + names + 2) return false;
  Reader r(body.substr(kHeaderSize + names, 2));
  return (r.u16() & BasicProperties::kFlagExpiration) != 0;
}

std::error_code MessageJournal::open(
    store::MessageStoreOptions options, const std::function<Queue*(uint64_t)>& find_queue,
    store::RecoveryReport* report,
    const std::function<bool(const store::RecoveredMessage&)>& adopt) {
  // The store reports on its sync thread; hop to the io thread, and drop reports that arrive
  // after close() (the io_context may still hold them while the server stops).
  std::weak_ptr<bool> alive = alive_;
  auto on_complete = [this, alive, &io = io_](const store::Completion& c) {
    boost::asio::post(io, [this, alive, c] {
      auto a = alive.lock();
      if (a && *a) synced(c);
    });
  };
  store_ = std::make_unique<store::MessageStore>(std::move(options), std::move(on_complete));
  std::optional<store::DeliveryMarks> marks = store::DeliveryMarks::take(store_->journal_dir());
  if (!marks) spdlog::info("message store: no clean-stop delivery marks; recovered messages are "
                           "flagged redelivered");
  std::vector<OrphanRecord> orphans;
  auto on_message = [&](const store::RecoveredMessage& r) {
    Queue* q = find_queue(r.queue_id);
    if (q == nullptr && adopt && adopt(r)) return;
    bool redelivered = !marks || marks->delivered(r.queue_id, r.msg_id);
    if (q == nullptr || !q->restore(r.msg_id, r.pos, r.body, redelivered)) {
      orphans.push_back(OrphanRecord{r.queue_id, r.msg_id, r.pos});
    }
  };
  if (std::error_code ec = store_->open(on_message, report)) return ec;
  if (!orphans.empty())
    spdlog::info("message store: dropping {} messages of queues that no longer exist",
                 orphans.size());
  for (const OrphanRecord& o : orphans) store_->append_ack(o.queue_id, o.msg_id, o.pos);
  if (!orphans.empty()) flush();
  return {};
}

void MessageJournal::synced(const store::Completion& c) {
  if (store_ && store_->is_open()) {
    store_->on_completion(c);
    if (store_->failed_acks() > 0) schedule_ack_retry();
  }
  // Queues first: a failed persistent message leaves its queue before its publisher's nack.
  sync_scratch_.swap(sync_watchers_);
  for (Ref<Queue>& q : sync_scratch_) {
    q->journal_synced(c);
    if (q->has_unsynced_records()) sync_watchers_.push_back(std::move(q));
  }
  sync_scratch_.clear();
  delay_scratch_.swap(delay_watchers_);
  for (Ref<DelayStore>& d : delay_scratch_) {
    d->journal_synced(c);
    if (d->has_unsynced_records()) delay_watchers_.push_back(std::move(d));
  }
  delay_scratch_.clear();
  on_synced_(c);
}

void MessageJournal::schedule_ack_retry() {
  if (ack_retry_armed_) return;
  ack_retry_armed_ = true;
  ack_retry_timer_.expires_after(std::chrono::seconds(1));
  ack_retry_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    ack_retry_armed_ = false;
    size_t n = store_->retry_failed_acks();
    if (n > 0) {
      spdlog::info("message store: writing {} acks again after a failed write", n);
      mark_dirty();
    }
  });
}

void MessageJournal::mark_dirty() {
  if (dirty_) return;
  dirty_ = true;
  on_dirty_();
}

void MessageJournal::close(const std::vector<store::DeliveryMark>* marks) {
  if (!store_) return;
  bool was_open = store_->is_open();
  *alive_ = false;
  ack_retry_timer_.cancel();
  // One last try for acks lost to a failed write (else those messages come back at restart).
  if (store_->is_open() && store_->retry_failed_acks() > 0) store_->flush();
  store_->close();
  if (marks != nullptr && was_open && !store_->last_error()) {
    if (std::error_code ec = store::DeliveryMarks::save(store_->journal_dir(), *marks))
      spdlog::warn("message store: cannot save delivery marks ({}); after restart every message "
                   "is flagged redelivered", ec.message());
  }
}

MessageJournal::Appended MessageJournal::append(uint64_t queue_id, uint64_t msg_id,
                                                const Message& m) {
  return write(queue_id, msg_id, m, /*relocation=*/false);
}

MessageJournal::Appended MessageJournal::append_prefixed(uint64_t queue_id, uint64_t msg_id,
                                                         std::string_view prefix,
                                                         const Message& m) {
  return write(queue_id, msg_id, m, /*relocation=*/false, prefix);
}

void MessageJournal::watch_syncs(Ref<DelayStore> d) { delay_watchers_.push_back(std::move(d)); }

MessageJournal::Appended MessageJournal::relocate(uint64_t queue_id, uint64_t msg_id,
                                                  const Message& m) {
  return write(queue_id, msg_id, m, /*relocation=*/true);
}

MessageJournal::Appended MessageJournal::write(uint64_t queue_id, uint64_t msg_id,
                                               const Message& m, bool relocation,
                                               std::string_view prefix) {
  Appended out;
  if (!is_open()) {
    out.error = store::make_error_code(store::StoreErrc::kNotOpen);
    return out;
  }
  scratch_ = encode_header(m);
  std::string_view parts[] = {prefix, scratch_, m.packed()};
  std::span<const std::string_view> used(prefix.empty() ? parts + 1 : parts,
                                         prefix.empty() ? 2 : 3);
  auto a = relocation ? store_->relocate(queue_id, msg_id, used)
                      : store_->append_message(queue_id, msg_id, used);
  if (!a) {
    out.error = a.error;
    return out;
  }
  out.pos = a.pos;
  out.seq = a.seq;
  bytes_appended_ += a.pos.size;
  mark_dirty();
  return out;
}

void MessageJournal::remove(uint64_t queue_id, uint64_t msg_id, const store::Position& pos) {
  if (!is_open()) return;
  if (std::error_code ec = store_->append_ack(queue_id, msg_id, pos)) {
    // Only a redelivery after a crash can follow from a lost ack.
    spdlog::warn("message store: cannot record ack: {}", ec.message());
    return;
  }
  mark_dirty();
}

MessageRef MessageJournal::read(const store::Position& pos) {
  if (!store_) return {};
  std::string body;
  if (std::error_code ec = store_->read(pos, &body)) {
    spdlog::error("message store: cannot read segment {} offset {}: {}", pos.segment, pos.offset,
                  ec.message());
    return {};
  }
  return decode(body);
}

bool MessageJournal::read_raw(const store::Position& pos, std::string* body) {
  if (!store_) return false;
  if (std::error_code ec = store_->read(pos, body)) {
    spdlog::error("message store: cannot read segment {} offset {}: {}", pos.segment, pos.offset,
                  ec.message());
    return false;
  }
  return true;
}

void MessageJournal::flush() {
  if (!dirty_) return;
  dirty_ = false;
  if (is_open()) store_->flush();
}

}  // namespace warren::broker
