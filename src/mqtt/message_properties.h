// How an MQTT message's attributes are kept in the broker's message format (AMQP 0-9-1
// content-header properties), so that AMQP, STOMP and MQTT clients see one message:
// - every MQTT publish carries the headers x-mqtt-publish-qos and x-mqtt-dup and delivery mode
//   1 (QoS 0) or 2 (QoS 1), as RabbitMQ 3.x writes them;
// - an MQTT 5.0 publish's properties map as RabbitMQ 3.13's mc_mqtt maps them: Content Type to
//   content_type, Correlation Data to correlation_id (or the header x-correlation-id when it is
//   not a short string), Response Topic to the header x-reply-to-topic (as a routing key), User
//   Properties to headers, Message Expiry Interval to expiration; Warren also keeps the Payload
//   Format Indicator, in the header x-mqtt-payload-format-indicator.
// and back for an MQTT 5.0 subscriber, whichever protocol published.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/properties.h"

namespace warren::mqtt {

// The properties of a 3.1.1 publish (or a 5.0 one without properties): one of four fixed
// encodings, built once.
std::string_view publish_properties(uint8_t qos, bool dup);

struct EncodedPublish {
  std::string raw;                // content-header properties
  int64_t expiration_ms = -1;     // from the Message Expiry Interval; -1 = none
};
// The properties of a 5.0 publish with properties; expiration_ms, when given, replaces the
// Message Expiry Interval (a delayed will expires into its exchange after its delay).
EncodedPublish publish_properties(uint8_t qos, bool dup, const Properties& p,
                                  std::optional<int64_t> expiration_ms = std::nullopt);

// The properties a retained 5.0 publish hands on to later subscribers (Payload Format
// Indicator, Content Type, Response Topic, Correlation Data, User Properties): a property list.
std::string retained_properties(const Properties& p);

// What a delivery's properties say about its MQTT origin.
struct PublishedAs {
  std::optional<uint8_t> qos;  // x-mqtt-publish-qos; none for a publish by another protocol
  bool dup = false;            // x-mqtt-dup
};
PublishedAs published_as(std::string_view raw_properties);

// The 5.0 PUBLISH properties of a delivery (Subscription Identifiers and Topic Alias excepted),
// appended to w. expires_in_ms: what is left of the message's expiry; -1 = none.
void delivery_properties(std::string_view raw_properties, int64_t expires_in_ms,
                         PropertyWriter& w);

}  // namespace warren::mqtt
