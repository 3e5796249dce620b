// AMQP errors as values: what a channel or connection is closed with (reply code, RabbitMQ's
// text, the failing method's ids). Broker errors convert to them through reply_code().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "amqp/methods.h"
#include "broker/error.h"
#include "common/result.h"

namespace warren::amqp {

std::string_view reply_code_name(uint16_t code);
// The AMQP reply code for a broker error (RabbitMQ's mapping of its error atoms).
uint16_t reply_code(broker::ErrorCode code);

struct AmqpError {
  uint16_t code = 0;
  std::string text;  // full reply text, e.g. "NOT_FOUND - no queue 'q' in vhost '/'"
  uint16_t class_id = 0;
  uint16_t method_id = 0;

  AmqpError() = default;
  AmqpError(uint16_t c, std::string t) : code(c), text(std::move(t)) {}
  // Implicit: a broker error returned by a handler closes the channel or connection with it.
  AmqpError(const broker::Error& e)
      : code(reply_code(e.code)), text(fmt::format("{} - {}", broker::error_name(e.code), e.text)) {}

  bool hard() const { return is_hard_error(code); }
};

// Builds an error whose text is prefixed by the reply code's name, as RabbitMQ writes it.
template <class... Args>
AmqpError amqp_error(uint16_t code, fmt::format_string<Args...> f, Args&&... args) {
  return AmqpError{code, fmt::format("{} - {}", reply_code_name(code),
                                     fmt::format(f, std::forward<Args>(args)...))};
}

template <class T>
using OpResult = Result<T, AmqpError>;
using Status = std::optional<AmqpError>;

}  // namespace warren::amqp
