#include "broker/message_stats.h"

namespace warren::broker {

void MessageStats::add(const MessageStats& o) {
  publish += o.publish;
  publish_in += o.publish_in;
  publish_out += o.publish_out;
  confirm += o.confirm;
  return_unroutable += o.return_unroutable;
  drop_unroutable += o.drop_unroutable;
  deliver += o.deliver;
  deliver_no_ack += o.deliver_no_ack;
  get += o.get;
  get_no_ack += o.get_no_ack;
  get_empty += o.get_empty;
  redeliver += o.redeliver;
  ack += o.ack;
}

bool MessageStats::any() const {
  return publish | publish_in | publish_out | confirm | return_unroutable | drop_unroutable |
         deliver | deliver_no_ack | get | get_no_ack | get_empty | redeliver | ack;
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

double SampleHistory::rate(uint64_t (*value)(const StatsSample&)) const {
  size_t n = samples_.size();
  if (n < 2) return 0;
  const StatsSample& a = samples_[n - 2];
  const StatsSample& b = samples_[n - 1];
  if (b.at_ms <= a.at_ms) return 0;
  double delta = static_cast<double>(value(b)) - static_cast<double>(value(a));
  return delta * 1000.0 / static_cast<double>(b.at_ms - a.at_ms);
}

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

}  // namespace warren::broker
