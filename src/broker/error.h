// Broker errors as values: a failing core operation returns what went wrong as a broker-level
// code (RabbitMQ's error atoms: not_found, access_refused, ...) and a text; each protocol maps
// the code to its own (AMQP reply code, HTTP status, MQTT reason, STOMP ERROR frame).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "common/result.h"

namespace warren::broker {

enum class ErrorCode : uint8_t {
  kNotFound,            // no such exchange / queue / vhost
  kAccessRefused,       // not permitted (reserved names, exclusive use, internal exchange)
  kResourceLocked,      // exclusive to another connection
  kPreconditionFailed,  // arguments or state do not allow it
  kNotAllowed,          // not allowed on this connection
  kCommandInvalid,      // the request makes no sense (unknown exchange type)
  kNotImplemented,      // a feature Warren does not have
  kResourceError,       // out of a resource
  kInternalError,       // the store failed
};

// RabbitMQ's upper-case name of the condition, as it prefixes its error texts.
std::string_view error_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternalError;
  std::string text;  // without the name prefix, e.g. "no queue 'q' in vhost '/'"
};

template <class... Args>
Error make_error(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Error{code, fmt::format(f, std::forward<Args>(args)...)};
}

template <class T>
using OpResult = Result<T, Error>;

// For operations with no value: an empty optional means success.
using Status = std::optional<Error>;

}  // namespace warren::broker
