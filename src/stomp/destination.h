// STOMP destinations as RabbitMQ maps them onto AMQP (rabbit_routing_util): /queue/name,
// /topic/key (amq.topic), /exchange/name[/key], /amq/queue/name (an existing queue),
// /temp-queue/name (only as reply-to), /reply-queue/name, or a bare name (a queue). In names "%2F"
// stands for "/"; a delivery's destination is written back with "/", "%" and bytes outside
// 32..127 percent-escaped.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace warren::stomp {

enum class DestinationKind { kQueue, kTopic, kExchange, kAmqQueue, kTempQueue, kReplyQueue };

struct Destination {
  DestinationKind kind = DestinationKind::kQueue;
  std::string name;                    // queue, topic key, exchange or temp-queue id
  std::optional<std::string> pattern;  // /exchange/name/pattern: the routing key

  // Where a publish to it goes (exchange "" = the default exchange) and with which key.
  std::string exchange() const;
  std::string routing_key() const;
};

// Why a destination header cannot be used, with RabbitMQ's ERROR message and body.
struct DestinationError {
  std::string message;  // "Unknown destination", "Invalid destination"
  std::string detail;
};

Result<Destination, DestinationError> parse_destination(std::string_view header);

// The destination header of a MESSAGE delivered from exchange/routing_key
// (rabbit_stomp_util:format_destination).
std::string format_destination(std::string_view exchange, std::string_view routing_key);

// Whether a reply-to value already names a destination (else a MESSAGE shows it as
// /reply-queue/<value>).
bool has_destination_prefix(std::string_view value);

}  // namespace warren::stomp
