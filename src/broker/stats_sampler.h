// Samples every object's message counters each collect_statistics_interval (RabbitMQ's setting,
// 5000 ms by default) on the event-loop thread: queues, exchanges, vhosts, channels (through
// their connections) and the broker-wide totals. Objects that never had traffic are skipped
// with one check each, so a tick over 100,000 idle queues stays well under a millisecond or two.
#pragma once

#include <cstdint>

#include <boost/asio/steady_timer.hpp>

#include "broker/delayed_exchange.h"  // wall_now_ms
#include "broker/message_stats.h"

namespace warren::broker {

class Broker;

class StatsSampler {
 public:
  StatsSampler(Broker& broker, uint64_t interval_ms);
  void start();
  uint64_t interval_ms() const { return interval_ms_; }
  // Samples kept: a minute of them per object, ten minutes of the totals.
  size_t object_samples() const { return object_samples_; }
  // Broker-wide counters (the sum of every vhost's) and queue lengths, sampled.
  const ObjectStats& totals() const { return totals_; }
  // One sample of everything now (the timer calls it; tests may too).
  void sample(uint64_t now_ms);

 private:
  void arm();

  Broker& broker_;
  boost::asio::steady_timer timer_;
  uint64_t interval_ms_;
  uint64_t previous_ms_ = 0;
  size_t object_samples_, total_samples_;
  ObjectStats totals_;
};

}  // namespace warren::broker
