#include "broker/stats_sampler.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "broker/broker.h"

namespace warren::broker {

StatsSampler::StatsSampler(Broker& broker, uint64_t interval_ms)
    : broker_(broker),
      timer_(broker.io()),
      interval_ms_(interval_ms == 0 ? 5000 : interval_ms),
      object_samples_(std::clamp<size_t>(kObjectHistoryMs / interval_ms_ + 1, 2, 61)),
      total_samples_(std::clamp<size_t>(kTotalHistoryMs / interval_ms_ + 1, 2, 1201)) {
  totals_.keep_history(total_samples_);
}

void StatsSampler::start() {
  previous_ms_ = wall_now_ms();
  arm();
}

void StatsSampler::arm() {
  timer_.expires_after(std::chrono::milliseconds(interval_ms_));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    sample(wall_now_ms());
    arm();
  });
}

void StatsSampler::sample(uint64_t now_ms) {
  MessageStats all;
  uint64_t all_ready = 0, all_unacked = 0;
  for (const std::string& name : broker_.list_vhosts()) {
    VHost* vh = broker_.find_vhost(name);
    if (vh == nullptr) continue;
    uint64_t ready = 0, unacked = 0;
    for (const auto& [qname, q] : vh->queues()) {
      ready += q->message_count();
      unacked += q->unacked_count();
      q->stats().sample(now_ms, previous_ms_, q->message_count(), q->unacked_count(),
                        object_samples_);
    }
    for (const auto& [xname, x] : vh->exchanges())
      x->stats().sample(now_ms, previous_ms_, 0, 0, object_samples_);
    // The running totals must equal what this walk sums; a drift is a counting bug.
    const QueueTotals& t = vh->queue_totals();
    if (static_cast<uint64_t>(t.ready) != ready || static_cast<uint64_t>(t.unacked) != unacked)
      spdlog::error("vhost '{}': queue totals drifted: running ready {} unacked {}, queues sum "
                    "ready {} unacked {}", name, t.ready, t.unacked, ready, unacked);
    vh->stats().sample(now_ms, previous_ms_, ready, unacked, object_samples_);
    all.add(vh->stats().counts);
    all_ready += ready;
    all_unacked += unacked;
  }
  totals_.counts = all;
  totals_.sample(now_ms, previous_ms_, all_ready, all_unacked, total_samples_);
  for (const auto& [raw, connection] : broker_.connections())
    connection->sample_stats(now_ms, previous_ms_, object_samples_);
  previous_ms_ = now_ms;
}

}  // namespace warren::broker
