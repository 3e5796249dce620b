// Broker::count_* and the statistics sampler's start (message_stats.h, stats_sampler.h).
#include "broker/broker.h"

namespace warren::broker {

void Broker::count_publish(VHost& vh, const PublishOutcome& o, ObjectStats* channel) {
  auto count = [&](MessageStats& s) {
    ++s.publish;
    if (o.queues == 0 && o.delayed == 0) ++(o.returned ? s.return_unroutable : s.drop_unroutable);
  };
  count(client_publishes_);
  count(vh.stats().counts);
  if (channel != nullptr) count(channel->counts);
}

void Broker::count_confirms(VHost& vh, uint64_t n, ObjectStats* channel) {
  vh.stats().counts.confirm += n;
  if (channel != nullptr) channel->counts.confirm += n;
}

void Broker::count_get_empty(Queue& q, ObjectStats* channel) {
  ++q.stats().counts.get_empty;
  if (VHost* vh = q.owner()) ++vh->stats().counts.get_empty;
  if (channel != nullptr) ++channel->counts.get_empty;
}

void Broker::start_stats_sampling(uint64_t interval_ms) {
  stats_sampler_ = std::make_unique<StatsSampler>(*this, interval_ms);
  stats_sampler_->start();
}

}  // namespace warren::broker
