#include <algorithm>
#include <limits>

#include "perf/workers.h"

namespace warren::perf {

namespace {

inline void store_be64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

}  // namespace

struct ProducerMethods {
  Producer& p;
  void on(const amqp::BasicAck& m) { p.confirm_upto(m.delivery_tag, m.multiple, false); }
  void on(const amqp::BasicNack& m) { p.confirm_upto(m.delivery_tag, m.multiple, true); }
  void on(const amqp::ChannelFlow& m) {
    p.flow_paused_ = !m.active;
    amqp::ChannelFlowOk ok;
    ok.active = m.active;
    amqp::write_method(p.out(), 1, ok);
    p.flush();
    if (m.active) p.pump();
  }
  template <class M>
  void on(const M&) {}  // basic.return (not mandatory, so not expected) and anything else
  void on_unknown_method(uint16_t, uint16_t) {}
  void on_malformed_method(uint16_t class_id, uint16_t method_id, std::string_view) {
    p.fail("malformed " + std::string(amqp::method_name(class_id, method_id)) + " from server");
    p.begin_close();
  }
};

Producer::Producer(ConnParams params, const Options& opts, WorkerStats& stats,
                   std::vector<std::string> routing_keys)
    : Worker(std::move(params), opts, stats),
      routing_keys_(std::move(routing_keys)),
      rate_timer_(io()) {}

bool Producer::setup() {
  if (opts_.confirm > 0) {
    if (!call(amqp::ConfirmSelect{}, amqp::ConfirmSelectOk::kId)) return false;
    size_t cap = 1024;
    while (cap < 2 * size_t(opts_.confirm)) cap <<= 1;
    pending_.assign(cap, 0);
    mask_ = cap - 1;
  }
  // One fully encoded message per routing key (and per priority with --priority); publishing
  // copies it and patches the body's timestamp and sequence number.
  std::string body(opts_.size, '\0');
  const bool with_priority = opts_.priority_min >= 0;
  const int pmin = with_priority ? opts_.priority_min : 0;
  const int pmax = with_priority ? opts_.priority_max : 0;
  priorities_ = size_t(pmax - pmin + 1);
  rng_ = now_ns() ^ (uint64_t(reinterpret_cast<uintptr_t>(this)) << 16) ^ 0x9e3779b97f4a7c15ull;
  if (rng_ == 0) rng_ = 1;
  for (const std::string& rk : routing_keys_) {
    for (int pri = pmin; pri <= pmax; ++pri) {
      BasicProperties props;
      props.flags = BasicProperties::kFlagDeliveryMode;
      props.delivery_mode = opts_.persistent ? 2 : 1;
      if (with_priority) {
        props.flags |= BasicProperties::kFlagPriority;
        props.priority = static_cast<uint8_t>(pri);
      }
      if (!opts_.expiration.empty()) {
        props.flags |= BasicProperties::kFlagExpiration;
        props.expiration = opts_.expiration;
      }
      std::string raw_props;
      Writer w(raw_props);
      props.encode(w);
      Template t;
      amqp::BasicPublish publish;
      publish.exchange = opts_.exchange;
      publish.routing_key = rk;
      amqp::write_method(t.bytes, 1, publish);
      amqp::write_content_header(t.bytes, 1, body.size(), raw_props);
      t.body_offset = t.bytes.size() + 7;
      amqp::write_body(t.bytes, 1, body, frame_max());
      templates_.push_back(std::move(t));
    }
  }
  out().reserve(opts_.batch_bytes + templates_[0].bytes.size() + 4096);
  return true;
}

void Producer::begin() {
  rate_base_ns_ = start_ns_;
  rate_base_sent_ = 0;
  pump();
}

void Producer::stop() {
  rate_timer_.cancel();
  begin_close();
}

void Producer::arm_rate_timer(uint64_t at_ns) {
  if (rate_waiting_) return;
  rate_waiting_ = true;
  // Waking per message would cost a timer syscall each: wake at most every millisecond and send
  // everything due by then (low rates still get exact spacing).
  uint64_t now = now_ns();
  constexpr uint64_t kMinWaitNs = 1'000'000;
  uint64_t wait = at_ns > now ? at_ns - now : 0;
  if (wait < kMinWaitNs) wait = kMinWaitNs;
  rate_timer_.expires_after(std::chrono::nanoseconds(wait));
  rate_timer_.async_wait([this](const boost::system::error_code& ec) {
    rate_waiting_ = false;
    if (ec) return;
    pump();
  });
}

void Producer::pump() {
  if (!running_ || flow_paused_ || closing() || ended()) return;
  std::string& buf = out();
  const size_t batch = opts_.batch_bytes;
  if (buf.size() >= batch) {  // a full batch waits for the write in flight
    flush();
    return;
  }
  uint64_t allowed = std::numeric_limits<uint64_t>::max();
  if (opts_.pmessages > 0) allowed = opts_.pmessages > sent_ ? opts_.pmessages - sent_ : 0;
  if (opts_.confirm > 0) {
    uint64_t room = unconfirmed_ < opts_.confirm ? opts_.confirm - unconfirmed_ : 0;
    allowed = std::min(allowed, room);
  }
  uint64_t now = now_ns();
  if (opts_.rate > 0 && allowed > 0) {
    double elapsed = now > rate_base_ns_ ? double(now - rate_base_ns_) / 1e9 : 0.0;
    uint64_t due = rate_base_sent_ + uint64_t(elapsed * opts_.rate) + 1;
    uint64_t one_second = uint64_t(opts_.rate) + 1;
    if (due > sent_ + one_second) {  // over a second behind (e.g. flow control): drop the backlog
      rate_base_ns_ = now;
      rate_base_sent_ = sent_;
      due = sent_ + 1;
    }
    if (due <= sent_) {
      allowed = 0;
      arm_rate_timer(rate_base_ns_ +
                     uint64_t(double(sent_ - rate_base_sent_) * 1e9 / opts_.rate));
    } else {
      allowed = std::min(allowed, due - sent_);
    }
  }
  uint64_t n = 0;
  const bool confirm = opts_.confirm > 0;
  const bool with_seq = opts_.size >= 16;
  while (n < allowed && buf.size() < batch) {
    size_t index = next_key_;
    if (++next_key_ == routing_keys_.size()) next_key_ = 0;
    if (priorities_ > 1) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      index = index * priorities_ + size_t(rng_ % priorities_);
    }
    const Template& t = templates_[index];
    size_t at = buf.size();
    buf.append(t.bytes);
    char* body = buf.data() + at + t.body_offset;
    uint64_t seq = sent_ + n + 1;
    store_be64(body, now);
    if (with_seq) store_be64(body + 8, seq);
    if (confirm) {
      if (seq - base_seq_ >= pending_.size()) {  // window wider than the ring: grow it
        std::vector<uint64_t> bigger(pending_.size() * 2, 0);
        uint64_t bigger_mask = bigger.size() - 1;
        for (uint64_t s = base_seq_; s < seq; ++s) bigger[s & bigger_mask] = pending_[s & mask_];
        pending_.swap(bigger);
        mask_ = bigger_mask;
      }
      pending_[seq & mask_] = now;
    }
    ++n;
  }
  if (n > 0) {
    sent_ += n;
    if (confirm) unconfirmed_ += n;
    bump(stats_.sent, n);
  }
  flush();
  check_finished();
}

void Producer::confirm_one(uint64_t seq, bool nack, uint64_t now) {
  if (seq < base_seq_ || seq > sent_) return;
  uint64_t& ts = pending_[seq & mask_];
  if (ts == 0) return;
  if (nack) {
    ++nacked_;
  } else {
    ++confirmed_;
    stats_.confirm_latency.record(now > ts ? now - ts : 0);
  }
  ts = 0;
  --unconfirmed_;
}

void Producer::confirm_upto(uint64_t tag, bool multiple, bool nack) {
  if (pending_.empty()) return;  // not in confirm mode
  uint64_t now = read_ns();
  if (tag > sent_) tag = sent_;
  if (multiple) {
    for (uint64_t s = base_seq_; s <= tag; ++s) confirm_one(s, nack, now);
    if (tag + 1 > base_seq_) base_seq_ = tag + 1;
  } else {
    confirm_one(tag, nack, now);
  }
  while (base_seq_ <= sent_ && pending_[base_seq_ & mask_] == 0) ++base_seq_;
  confirms_changed_ = true;
}

void Producer::on_method(uint16_t class_id, uint16_t method_id, Reader& args) {
  ProducerMethods h{*this};
  amqp::dispatch_method(class_id, method_id, args, h);
}

void Producer::on_read_done() {
  if (!confirms_changed_) return;
  confirms_changed_ = false;
  stats_.confirmed.store(confirmed_, std::memory_order_relaxed);
  stats_.nacked.store(nacked_, std::memory_order_relaxed);
  pump();
  check_finished();
}

void Producer::check_finished() {
  if (!running_ || opts_.pmessages == 0 || sent_ < opts_.pmessages) return;
  if (opts_.confirm > 0 && unconfirmed_ > 0) return;
  finish();
}

}  // namespace warren::perf
