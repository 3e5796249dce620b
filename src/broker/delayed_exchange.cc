#include "broker/delayed_exchange.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <spdlog/spdlog.h>

#include "broker/message_journal.h"
#include "broker/queue.h"
#include "broker/vhost.h"

namespace warren::broker {
namespace {

// The delay clock: the steady clock shifted by 2^40 ms (35 years), so that a message recovered
// long overdue still has a due time below "now" and overdue messages keep their order.
constexpr uint64_t kClockOffset = uint64_t{1} << 40;

// Entry ids: publish order across every delayed exchange of the process, and the msg id of
// durable records (whose queue id, kJournalId, all exchanges share). Recovery moves it past every
// id still in the journal.
uint64_t g_next_id = 1;

uint64_t next_id() { return g_next_id++; }
void note_recovered_id(uint64_t id) { g_next_id = std::max(g_next_id, id + 1); }

// A delayed record's body: this prefix, then the message as MessageJournal encodes it.
//   u8 version (1) | u8 vhost length | vhost | u8 exchange length | exchange |
//   u64 due time (ms since the Unix epoch, little-endian)
constexpr uint8_t kPrefixVersion = 1;

struct RecordPrefix {
  std::string_view vhost;
  std::string_view exchange;
  uint64_t due_wall_ms = 0;
  std::string_view message;  // the rest: MessageJournal's record body
};

bool parse_prefix(std::string_view body, RecordPrefix* out) {
  auto shortstr = [&](std::string_view* s) {
    if (body.empty()) return false;
    size_t n = static_cast<uint8_t>(body[0]);
    if (body.size() < 1 + n) return false;
    *s = body.substr(1, n);
    body.remove_prefix(1 + n);
    return true;
  };
  if (body.empty() || static_cast<uint8_t>(body[0]) != kPrefixVersion) return false;
  body.remove_prefix(1);
  if (!shortstr(&out->vhost) || !shortstr(&out->exchange) || body.size() < 8) return false;
  std::memcpy(&out->due_wall_ms, body.data(), 8);
  body.remove_prefix(8);
  out->message = body;
  return true;
}

// Erlang's binary_to_integer, which the plugin applies to a string x-delay: an optional sign
// and digits only. (The plugin's channel crashes on anything else; Warren routes at once.)
// Values far out of range saturate: they only need to compare as too large or negative.
std::optional<int64_t> string_delay(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > kMaxDelayMs) {
      v = kMaxDelayMs + 1;
      break;
    }
  }
  return negative ? -v : v;
}

std::optional<int64_t> float_delay(double d) {
  if (!std::isfinite(d)) return std::nullopt;
  d = std::trunc(d);
  if (d > static_cast<double>(kMaxDelayMs)) return kMaxDelayMs + 1;
  if (d < -static_cast<double>(kMaxDelayMs)) return -kMaxDelayMs;
  return static_cast<int64_t>(d);
}

}  // namespace

uint64_t wall_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::optional<int64_t> x_delay_of(const FieldTable& headers) {
  const FieldValue* v = headers.find("x-delay");
  if (v == nullptr) return std::nullopt;
  // The plugin (3.x): byte, short, signedint, long and their unsigned forms as they are; longstr
  // parsed; float, double and decimal truncated; anything else (bool, timestamp, byte array,
  // table, array, void) is no delay.
  if (auto i = v->as_int()) return *i;
  if (auto* s = std::get_if<std::string>(&v->v)) return string_delay(*s);
  if (auto* f = std::get_if<float>(&v->v)) return float_delay(*f);
  if (auto* d = std::get_if<double>(&v->v)) return float_delay(*d);
  if (auto* dec = std::get_if<Decimal>(&v->v))
    return float_delay(static_cast<double>(dec->value) / std::pow(10.0, dec->scale));
  return std::nullopt;
}

OpResult<ExchangeType> delayed_routing_type(const FieldTable& arguments) {
  const FieldValue* v = arguments.find("x-delayed-type");
  std::optional<std::string_view> type = v ? v->as_string() : std::nullopt;
  if (type && *type == kDelayedExchangeType)
    return make_error(ErrorCode::kPreconditionFailed,
                      "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'");
  if (!type)
    return make_error(ErrorCode::kPreconditionFailed,
                      "Invalid argument, 'x-delayed-type' must be an existing exchange type");
  std::optional<ExchangeType> t = parse_exchange_type(*type);
  if (!t) return make_error(ErrorCode::kCommandInvalid, "unknown exchange type '{}'", *type);
  return *t;
}

Ref<DelayStore> DelayStore::create(VHost* vhost, Exchange* exchange, bool durable,
                                   MessageJournal* journal, DelayTimer* timer) {
  return Ref<DelayStore>(new DelayStore(vhost, exchange, durable, journal, timer));
}

void DelayStore::destroy(DelayStore* s) { delete s; }

DelayStore::DelayStore(VHost* vhost, Exchange* exchange, bool durable, MessageJournal* journal,
                       DelayTimer* timer)
    : vhost_(vhost), exchange_(exchange), durable_(durable && journal != nullptr),
      journal_(journal), timer_(timer) {}

std::string DelayStore::record_prefix(uint64_t due_wall_ms) const {
  std::string p;
  std::string_view vhost = vhost_->name();
  std::string_view exchange = exchange_->name();
  p.reserve(11 + vhost.size() + exchange.size());
  p.push_back(static_cast<char>(kPrefixVersion));
  p.push_back(static_cast<char>(vhost.size()));
  p.append(vhost);
  p.push_back(static_cast<char>(exchange.size()));
  p.append(exchange);
  char due[8];
  std::memcpy(due, &due_wall_ms, 8);
  p.append(due, 8);
  return p;
}

void DelayStore::keep_in_ram(uint64_t id, const MessageRef& m) {
  if (ram_.try_emplace(id, m).second) ram_bytes_ += m->body_size();
}

MessageRef DelayStore::take_from_ram(uint64_t id) {
  auto it = ram_.find(id);
  if (it == ram_.end()) return {};
  MessageRef m = std::move(it->second);
  ram_.erase(it);
  ram_bytes_ -= m->body_size();
  return m;
}

DelayStore::Added DelayStore::add(const MessageRef& m, int64_t delay_ms) {
  Added out;
  if (detached() || delay_ms <= 0) return out;
  uint64_t delay = static_cast<uint64_t>(delay_ms);
  DelayEntry e(steady_now_ms() + kClockOffset + delay, next_id());
  bool persistent = durable_ && m->delivery_mode == 2;
  bool in_ram = !ram_full(m->body_size());
  // Persistent messages of a durable exchange are written in any case; other bodies only when
  // they do not fit in the RAM budget (and kept in RAM until the write is synced).
  if (persistent || (!in_ram && journal_ != nullptr)) {
    uint64_t queue_id = kJournalId;
    if (!persistent) {
      if (page_id_ == 0) page_id_ = journal_->next_page_id();
      queue_id = page_id_;
    }
    auto a = journal_->append_prefixed(queue_id, e.id, record_prefix(wall_now_ms() + delay), *m);
    if (a.error) {
      if (persistent) {
        // Nacked to the publisher, so not kept either (the publisher will send it again).
        out.journal_failed = true;
        return out;
      }
      in_ram = true;  // cannot be paged out: stays in RAM
    } else {
      e.durable = persistent;
      e.set_position(a.pos);
      if (persistent) out.journal_seq = a.seq;
      track_unsynced(a.seq, e.id, /*page_out=*/!persistent);
      if (!persistent) in_ram = true;  // until the write is synced
    }
  }
  if (in_ram) keep_in_ram(e.id, m);
  index_.push(e);
  schedule_wakeup();
  return out;
}

void DelayStore::track_unsynced(uint64_t journal_seq, uint64_t id, bool page_out) {
  if (unsynced_.empty()) journal_->watch_syncs(Ref<DelayStore>(this));
  unsynced_.push_back(Unsynced{journal_seq, id, page_out});
}

void DelayStore::journal_synced(const store::Completion& c) {
  std::vector<Unsynced> failed;
  while (!unsynced_.empty() && unsynced_.front().journal_seq <= c.last_seq) {
    Unsynced u = unsynced_.front();
    unsynced_.pop_front();
    if (c.error) {
      failed.push_back(u);
    } else if (u.page_out) {
      take_from_ram(u.id);  // the body is on disk now (nothing to do if it was delivered)
    }
  }
  if (failed.empty() || detached()) return;
  // Rare: a scan of the index. A transient body that could not be paged out stays in RAM; a
  // persistent message whose write failed is nacked to its publisher, so it is dropped (an ack
  // record makes sure a copy that did reach the disk does not come back).
  std::sort(failed.begin(), failed.end(),
            [](const Unsynced& a, const Unsynced& b) { return a.id < b.id; });
  auto failure = [&](uint64_t id) -> const Unsynced* {
    auto it = std::lower_bound(failed.begin(), failed.end(), id,
                               [](const Unsynced& u, uint64_t v) { return u.id < v; });
    return it != failed.end() && it->id == id ? &*it : nullptr;
  };
  index_.for_each([&](DelayEntry& e) {
    const Unsynced* f = failure(e.id);
    if (f == nullptr || !f->page_out || !e.on_disk()) return;
    forget(e);
    e.clear_position();
  });
  size_t dropped = index_.remove_if([&](const DelayEntry& e) {
    const Unsynced* f = failure(e.id);
    if (f == nullptr || f->page_out) return false;
    forget(e);
    take_from_ram(e.id);
    return true;
  });
  if (dropped > 0)
    spdlog::warn("exchange '{}' in vhost '{}': {} delayed messages dropped after a failed journal "
                 "write (their publishes are nacked)",
                 exchange_->name(), vhost_->name(), dropped);
  schedule_wakeup();
}

MessageRef DelayStore::body_of(const DelayEntry& e) {
  if (MessageRef m = take_from_ram(e.id)) return m;
  if (!e.on_disk() || journal_ == nullptr) return {};
  std::string raw;
  if (!journal_->read_raw(e.position(), &raw)) return {};
  RecordPrefix p;
  MessageRef m;
  if (parse_prefix(raw, &p)) m = MessageJournal::decode(p.message);
  if (!m)
    spdlog::error("delayed message at segment {} offset {} is not readable; dropped", e.segment,
                  e.offset);
  return m;
}

void DelayStore::forget(const DelayEntry& e) {
  if (e.on_disk() && journal_ != nullptr)
    journal_->remove(e.durable ? kJournalId : page_id_, e.id, e.position());
}

void DelayStore::wake_up() { wake_up_at(steady_now_ms()); }

void DelayStore::wake_up_at(uint64_t now) {
  wakeup_at_ = 0;
  if (detached()) return;
  Ref<DelayStore> keep(this);  // routing may delete the exchange
  uint64_t clock = now + kClockOffset;
  bool due = !index_.empty() && index_.top().due <= clock;
  if (due && journal_ != nullptr && journal_->unsynced_bytes() > kJournalHighWater) {
    // The disk is behind: routing more (journaled again by durable queues) would only add to it.
    if (timer_ != nullptr) {
      wakeup_at_ = now + 10;
      timer_->schedule_wakeup(*this, wakeup_at_);
    }
    return;
  }
  size_t n = 0;
  uint64_t bytes = 0;
  while (!index_.empty() && index_.top().due <= clock) {
    if (n >= kBatchMessages || bytes >= kBatchBytes) {
      // The rest in the next turn, so sockets are served meanwhile.
      if (timer_ != nullptr) {
        wakeup_at_ = now;
        timer_->schedule_wakeup(*this, now);
      }
      return;
    }
    DelayEntry e = index_.pop();
    MessageRef m = body_of(e);
    ++n;
    if (m) {
      bytes += m->body_size();
      vhost_->publish_delayed(exchange_, m);
    }
    // After routing: durable queues' records then precede the ack in the journal, so a crash in
    // between can only duplicate the message, never lose it.
    forget(e);
    if (detached()) return;
  }
  schedule_wakeup();
}

void DelayStore::schedule_wakeup() {
  if (timer_ == nullptr || detached() || index_.empty()) return;
  uint64_t due = index_.top().due;
  uint64_t at = due > kClockOffset ? due - kClockOffset : 0;
  // One pending wakeup at a time unless an earlier one is needed (as Queue::schedule_wakeup).
  if (wakeup_at_ != 0 && wakeup_at_ <= at && wakeup_at_ >= steady_now_ms()) return;
  wakeup_at_ = at;
  timer_->schedule_wakeup(*this, at);
}

void DelayStore::discard_all() {
  if (detached()) return;
  size_t n = index_.size();
  index_.for_each([&](DelayEntry& e) { forget(e); });
  if (n > 0)
    spdlog::info("exchange '{}' in vhost '{}' deleted with {} delayed messages", exchange_->name(),
                 vhost_->name(), n);
  detach();
}

void DelayStore::detach() {
  exchange_ = nullptr;
  index_.clear();
  ram_.clear();
  ram_bytes_ = 0;
  unsynced_.clear();
}

bool DelayStore::recover(
    const store::RecoveredMessage& r,
    const std::function<DelayStore*(std::string_view, std::string_view)>& find) {
  note_recovered_id(r.msg_id);
  RecordPrefix p;
  if (!parse_prefix(r.body, &p)) return false;
  DelayStore* s = find(p.vhost, p.exchange);
  if (s == nullptr || !s->durable_ || s->detached()) return false;
  s->restore(r.msg_id, r.pos, p.due_wall_ms);
  return true;
}

void DelayStore::restore(uint64_t id, const store::Position& pos, uint64_t due_wall_ms) {
  // Due at the same wall-clock time as before the restart; a late one is due now, still ahead of
  // those that were due after it.
  int64_t left = static_cast<int64_t>(due_wall_ms) - static_cast<int64_t>(wall_now_ms());
  int64_t due = static_cast<int64_t>(steady_now_ms() + kClockOffset) + left;
  DelayEntry e(static_cast<uint64_t>(std::max<int64_t>(due, 0)), id);
  e.durable = 1;
  e.set_position(pos);
  index_.push(e);
  schedule_wakeup();
}

}  // namespace warren::broker
