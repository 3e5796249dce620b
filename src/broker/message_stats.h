// Message counters and their rates, as RabbitMQ's management statistics: every queue, exchange,
// channel and vhost counts what passes through it (plain increments on the event-loop thread;
// nothing is locked or allocated on the message path), and a sampler (stats_sampler.h) snapshots
// the counters every collect_statistics_interval so readers get RabbitMQ's
// `message_stats.<field>_details.rate` and sample histories for charts.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <boost/circular_buffer.hpp>

namespace warren::broker {

// One counter per RabbitMQ message_stats field (totals since the object was created).
struct MessageStats {
  uint64_t publish = 0;            // queue: messages enqueued; channel/vhost: published
  uint64_t publish_in = 0;         // exchange: messages published to it
  uint64_t publish_out = 0;        // exchange: of those, routed to at least one queue
  uint64_t confirm = 0;            // publisher confirms sent (acks and nacks)
  uint64_t return_unroutable = 0;  // mandatory publishes returned
  uint64_t drop_unroutable = 0;    // unroutable publishes dropped
  uint64_t deliver = 0;            // consumer deliveries needing an ack
  uint64_t deliver_no_ack = 0;     // consumer deliveries in no-ack mode
  uint64_t get = 0;                // basic.get answered, needing an ack
  uint64_t get_no_ack = 0;         // basic.get answered in no-ack mode
  uint64_t get_empty = 0;          // basic.get on an empty queue
  uint64_t redeliver = 0;          // deliveries and gets of redelivered messages
  uint64_t ack = 0;                // deliveries acknowledged

  uint64_t deliver_get() const { return deliver + deliver_no_ack + get + get_no_ack; }

  // A delivery (consumer) or a get; the sink of every protocol's deliveries calls this.
  void count_delivery(bool is_get, bool no_ack, bool redelivered) {
    if (is_get) ++(no_ack ? get_no_ack : get);
    else ++(no_ack ? deliver_no_ack : deliver);
    if (redelivered) ++redeliver;
  }
  void add(const MessageStats& o);
  bool any() const;
};

// The fields an object kind reports (RabbitMQ shows a queue's deliveries but not its confirms).
enum class StatsKind : uint8_t { kQueue, kExchange, kChannel, kVHost };

// RabbitMQ's field name and the counter, for every field `kind` reports, deliver_get included
// (deliver_get is computed, so `value` returns it rather than a member).
struct StatsField {
  std::string_view name;
  uint64_t (*value)(const MessageStats&);
};
const std::vector<StatsField>& stats_fields(StatsKind kind);

// What one sample records: the counters and, for queues and totals, the queue lengths.
struct StatsSample {
  uint64_t at_ms = 0;  // wall clock (RabbitMQ's sample timestamps are epoch milliseconds)
  MessageStats counts;
  uint64_t ready = 0, unacked = 0;
};

// The last samples of one object: its rates come from the newest two, and a chart reads them
// all. Objects that never see traffic keep none (ObjectStats allocates on the first change).
class SampleHistory {
 public:
  explicit SampleHistory(size_t capacity) : samples_(capacity) {}
  void add(const StatsSample& s) { samples_.push_back(s); }
  const boost::circular_buffer<StatsSample>& samples() const { return samples_; }
  // Per second between the newest two samples (0 with fewer than two); value(sample) picks the
  // figure.
  template <class Value>
  double rate(Value&& value) const {
    size_t n = samples_.size();
    if (n < 2 || samples_[n - 1].at_ms <= samples_[n - 2].at_ms) return 0;
    double delta = static_cast<double>(value(samples_[n - 1])) -
                   static_cast<double>(value(samples_[n - 2]));
    return delta * 1000.0 / static_cast<double>(samples_[n - 1].at_ms - samples_[n - 2].at_ms);
  }

 private:
  boost::circular_buffer<StatsSample> samples_;
};

// The counters of one object and, once it has had traffic, its sample history.
class ObjectStats {
 public:
  MessageStats counts;

  // A sample at now_ms (wall clock) with the current counters and lengths; previous_ms is the
  // sampler's previous tick. An object whose counters and lengths never changed records nothing
  // (100,000 idle queues cost no history).
  void sample(uint64_t now_ms, uint64_t previous_ms, uint64_t ready, uint64_t unacked,
              size_t capacity);
  const SampleHistory* history() const { return history_.get(); }
  // Adds another object's counters and samples (taken on the same sampler ticks) to these: a
  // management user's overview is the sum of its vhosts'.
  void add(const ObjectStats& other);
  // Samples from now on even while nothing changes (the broker-wide totals: a flat chart).
  void keep_history(size_t capacity) {
    if (!history_) history_ = std::make_unique<SampleHistory>(capacity);
  }

 private:
  std::unique_ptr<SampleHistory> history_;
};

// History kept: a minute per object, ten minutes of the totals the overview charts
// (StatsSampler turns them into sample counts for its interval).
constexpr uint64_t kObjectHistoryMs = 60'000;
constexpr uint64_t kTotalHistoryMs = 600'000;

}  // namespace warren::broker
