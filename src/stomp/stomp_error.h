// An ERROR frame to send: RabbitMQ's `message` header and body text. A fatal error (what
// RabbitMQ reports after the broker closed its internal AMQP channel: not_found,
// access_refused, precondition_failed, ...) closes the connection after the frame; the others
// (a missing header, an unknown destination) leave it open, as RabbitMQ does.
#pragma once

#include <optional>
#include <string>

#include "broker/error.h"

namespace warren::stomp {

struct StompError {
  std::string message;
  std::string detail;
  bool fatal = false;
};

using StompStatus = std::optional<StompError>;

inline StompError protocol_error(std::string message, std::string detail) {
  return StompError{std::move(message), std::move(detail), false};
}

// A broker error as RabbitMQ's amqp_death shows it: the lower-case condition as the message
// ("not_found") and "NOT_FOUND - <text>" as the body; the connection closes.
StompError broker_error(const broker::Error& e);

// What RabbitMQ answers when a handler fails in a way it did not foresee (a header that is not
// an integer, an unknown ack mode): a generic ERROR, the connection stays open.
inline StompError processing_error() { return protocol_error("Processing error", "Processing error"); }

}  // namespace warren::stomp
