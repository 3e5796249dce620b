// Names RabbitMQ's STOMP adapter makes up: session ids, subscription queue names and the
// message-id / ack values of deliveries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren::stomp {

// "session-" and 22 characters of URL-safe base64 (rabbit_guid:string(gen_secure(), "session")).
std::string new_session_id();

// The queue of a durable topic or exchange subscription: "stomp-subscription-" and the URL-safe
// base64 of the MD5 of the Erlang term {RoutingKey, SubscriptionId}, exactly as RabbitMQ names it,
// so a durable subscription made on RabbitMQ finds its queue here (and back).
std::string durable_subscription_queue(std::string_view routing_key, std::string_view id);
// A non-durable subscription's queue: the same prefix with a random suffix.
std::string random_subscription_queue();

// message-id (and 1.2 ack) of a delivery: "<consumer tag>@@<session>@@<delivery tag>".
std::string message_id(std::string_view consumer_tag, std::string_view session,
                       uint64_t delivery_tag);

struct ParsedMessageId {
  std::string consumer_tag;
  std::optional<uint64_t> delivery_tag;  // nullopt: the last part is not a number
};
// nullopt unless the value has exactly three "@@"-separated parts.
std::optional<ParsedMessageId> parse_message_id(std::string_view id);

}  // namespace warren::stomp
