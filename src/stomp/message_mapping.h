// STOMP headers <-> AMQP message properties, as rabbit_stomp_util maps them: SEND's well-known
// headers become properties (content-type, persistent -> delivery mode 2, amqp-message-id ->
// message-id, ...) and every other header an AMQP header (long string); a MESSAGE carries the
// AMQP headers of string and integer type, then the properties.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stomp/frame.h"

namespace warren::stomp {

// The AMQP side of a SEND frame.
struct PublishProperties {
  std::string raw;  // encoded content-header properties (common/basic_properties.h)
  uint8_t delivery_mode = 0;
  uint8_t priority = 0;
  std::optional<std::string> expiration;
  std::optional<std::string> user_id;
};

// nullopt when priority or timestamp is not a number (RabbitMQ's "Processing error").
// reply_to overrides the frame's reply-to header (a /temp-queue/ rewritten to its queue).
std::optional<PublishProperties> publish_properties(const Frame& send,
                                                    const std::string* reply_to);

// Appends the headers a MESSAGE shows for a message with these encoded properties (after the
// subscription, destination, message-id, redelivered and ack headers the caller writes).
void append_message_headers(std::string_view raw_properties, std::vector<Header>& out);

}  // namespace warren::stomp
