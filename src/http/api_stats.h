// Message rates in RabbitMQ's shapes: `message_stats: {publish: N, publish_details: {rate}}` per
// object kind, queue lengths with `messages_details`, and, when the request asks with
// msg_rates_age/msg_rates_incr or lengths_age/lengths_incr (seconds), the `samples`, `avg` and
// `avg_rate` the UI's charts draw (newest first, timestamps on multiples of incr, as RabbitMQ).
#pragma once

#include <boost/json.hpp>

#include "broker/message_stats.h"
#include "http/api_call.h"

namespace warren::http {

// What history a request asks for (age 0: rates only).
struct SampleRange {
  uint64_t msg_age_s = 0, msg_incr_s = 5;
  uint64_t lengths_age_s = 0, lengths_incr_s = 5;
  static SampleRange of(const Target& t);
};

// The message_stats object, or null when the object never had traffic (RabbitMQ then omits the
// key: callers skip a null).
boost::json::value message_stats_json(const broker::ObjectStats& s, broker::StatsKind kind,
                                      const SampleRange& range);
// Sets messages/messages_ready/messages_unacknowledged and their _details from current lengths
// and the object's samples.
void add_lengths(boost::json::object& o, const broker::ObjectStats& s, uint64_t ready,
                 uint64_t unacked, const SampleRange& range);

}  // namespace warren::http
