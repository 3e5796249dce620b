#include <algorithm>

#include "perf/workers.h"

namespace warren::perf {

namespace {

inline uint64_t load_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

constexpr uint64_t kMaxPlausibleLatencyNs = 3600ull * 1'000'000'000ull;

}  // namespace

struct ConsumerMethods {
  Consumer& c;
  void on(const amqp::BasicDeliver& m) {
    c.delivery_tag_ = m.delivery_tag;
    c.in_message_ = true;
    c.need_timestamp_ = false;
    c.body_left_ = 0;
  }
  void on(const amqp::BasicCancel& m) {
    c.fail("server cancelled consumer '" + std::string(m.consumer_tag) +
           "' (queue deleted or failed over?)");
    c.begin_close();
  }
  template <class M>
  void on(const M&) {}
  void on_unknown_method(uint16_t, uint16_t) {}
  void on_malformed_method(uint16_t class_id, uint16_t method_id, std::string_view) {
    c.fail("malformed " + std::string(amqp::method_name(class_id, method_id)) + " from server");
    c.begin_close();
  }
};

Consumer::Consumer(ConnParams params, const Options& opts, WorkerStats& stats,
                   std::vector<std::string> queues)
    : Worker(std::move(params), opts, stats), queues_(std::move(queues)) {}

bool Consumer::setup() {
  ack_every_ = std::max<uint32_t>(1, opts_.multi_ack);
  if (!opts_.autoack && opts_.prefetch > 0) {
    // Acking less often than the prefetch window would stall the consumer.
    ack_every_ = std::min<uint32_t>(ack_every_, opts_.prefetch);
    amqp::BasicQos qos;
    qos.prefetch_count = static_cast<uint16_t>(opts_.prefetch);
    if (!call(qos, amqp::BasicQosOk::kId)) return false;
  }
  for (const std::string& q : queues_) {
    amqp::BasicConsume consume;
    consume.queue = q;
    consume.no_ack = opts_.autoack;
    if (!call(consume, amqp::BasicConsumeOk::kId)) return false;
  }
  return true;
}

void Consumer::on_method(uint16_t class_id, uint16_t method_id, Reader& args) {
  ConsumerMethods h{*this};
  amqp::dispatch_method(class_id, method_id, args, h);
}

void Consumer::on_header(uint64_t body_size) {
  if (!in_message_) return;
  body_left_ = body_size;
  need_timestamp_ = true;
  if (body_size == 0) message_done();
}

void Consumer::on_body(std::string_view data) {
  if (!in_message_) return;
  if (need_timestamp_ && !quota_reached_) {
    need_timestamp_ = false;
    if (data.size() >= 8) {
      uint64_t sent = load_be64(data.data());
      uint64_t now = read_ns();
      if (sent != 0 && now >= sent && now - sent < kMaxPlausibleLatencyNs) {
        stats_.latency.record(now - sent);
      }
    }
  }
  body_left_ -= std::min<uint64_t>(body_left_, data.size());
  if (body_left_ == 0) message_done();
}

void Consumer::message_done() {
  in_message_ = false;
  if (quota_reached_) return;  // past --cmessages: left unacked, requeued when we close
  ++received_;
  if (!opts_.autoack && ++unacked_ >= ack_every_) {
    ack_due_ = delivery_tag_;
    unacked_ = 0;
  }
  if (opts_.cmessages > 0 && received_ >= opts_.cmessages) {
    quota_reached_ = true;
    if (!opts_.autoack && unacked_ > 0) {
      ack_due_ = delivery_tag_;
      unacked_ = 0;
    }
  }
}

void Consumer::on_read_done() {
  if (received_ != reported_) {
    stats_.received.store(received_, std::memory_order_relaxed);
    reported_ = received_;
  }
  if (ack_due_ != 0) {
    amqp::BasicAck ack;
    ack.delivery_tag = ack_due_;
    ack.multiple = true;
    amqp::write_method(out(), 1, ack);
    ack_due_ = 0;
    flush();
  }
  if (quota_reached_ && running_) finish();
}

}  // namespace warren::perf
