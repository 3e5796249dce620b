#include "broker/message_stats.h"

#include <algorithm>
#include <map>

namespace warren::broker {

namespace {

// Every counter of MessageStats, for what treats them all alike.
constexpr uint64_t MessageStats::*kCounters[] = {
    &MessageStats::publish,   &MessageStats::publish_in,        &MessageStats::publish_out,
    &MessageStats::confirm,   &MessageStats::return_unroutable, &MessageStats::drop_unroutable,
    &MessageStats::deliver,   &MessageStats::deliver_no_ack,    &MessageStats::get,
    &MessageStats::get_no_ack, &MessageStats::get_empty,        &MessageStats::redeliver,
    &MessageStats::ack};
static_assert(sizeof(kCounters) / sizeof(kCounters[0]) * sizeof(uint64_t) == sizeof(MessageStats),
              "a counter added to MessageStats must be listed here");

}  // namespace

void MessageStats::add(const MessageStats& o) {
  for (uint64_t MessageStats::*c : kCounters) this->*c += o.*c;
}

bool MessageStats::any() const {
  for (uint64_t MessageStats::*c : kCounters)
    if (this->*c != 0) return true;
  return false;
}

namespace {

#define WARREN_STAT(f) StatsField{#f, [](const MessageStats& s) { return s.f; }}

const StatsField kDeliverGet{"deliver_get", [](const MessageStats& s) { return s.deliver_get(); }};

}  // namespace

// The field sets RabbitMQ 3.10 reports per object kind (rabbit_mgmt_format / the stats DB).
const std::vector<StatsField>& stats_fields(StatsKind kind) {
  static const std::vector<StatsField> queue = {
      WARREN_STAT(ack),        WARREN_STAT(deliver),    kDeliverGet,
      WARREN_STAT(deliver_no_ack), WARREN_STAT(get),    WARREN_STAT(get_empty),
      WARREN_STAT(get_no_ack), WARREN_STAT(publish),    WARREN_STAT(redeliver)};
  static const std::vector<StatsField> exchange = {WARREN_STAT(publish_in),
                                                   WARREN_STAT(publish_out)};
  static const std::vector<StatsField> channel = {
      WARREN_STAT(ack),        WARREN_STAT(confirm),    WARREN_STAT(deliver),
      kDeliverGet,             WARREN_STAT(deliver_no_ack), WARREN_STAT(drop_unroutable),
      WARREN_STAT(get),        WARREN_STAT(get_empty),  WARREN_STAT(get_no_ack),
      WARREN_STAT(publish),    WARREN_STAT(redeliver),  WARREN_STAT(return_unroutable)};
  switch (kind) {
    case StatsKind::kQueue: return queue;
    case StatsKind::kExchange: return exchange;
    case StatsKind::kChannel:
    case StatsKind::kVHost: return channel;
  }
  return channel;
}

#undef WARREN_STAT

void ObjectStats::sample(uint64_t now_ms, uint64_t previous_ms, uint64_t ready, uint64_t unacked,
                         size_t capacity) {
  if (!history_) {
    if (!counts.any() && ready == 0 && unacked == 0) return;
    history_ = std::make_unique<SampleHistory>(capacity);
    // The previous tick saw nothing yet: a zero sample then, so the first rate is not lost.
    history_->add(StatsSample{previous_ms, {}, 0, 0});
  }
  history_->add(StatsSample{now_ms, counts, ready, unacked});
}

void ObjectStats::add(const ObjectStats& other) {
  counts.add(other.counts);
  if (!other.history_) return;
  // Sum by tick. An object with no sample at a tick had no history yet: its counters were zero.
  std::map<uint64_t, StatsSample> by_tick;
  size_t capacity = 0;
  for (const SampleHistory* h : {history_.get(), other.history_.get()}) {
    if (h == nullptr) continue;
    capacity = std::max(capacity, h->samples().capacity());
    for (const StatsSample& s : h->samples()) {
      StatsSample& sum = by_tick[s.at_ms];
      sum.at_ms = s.at_ms;
      sum.counts.add(s.counts);
      sum.ready += s.ready;
      sum.unacked += s.unacked;
    }
  }
  history_ = std::make_unique<SampleHistory>(capacity);
  for (const auto& [at, s] : by_tick) history_->add(s);  // keeps the newest `capacity`
}

}  // namespace warren::broker
