// AMQP errors as values: every failing broker operation returns the reply code and text that the
// channel or connection is closed with, instead of throwing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "amqp/methods.h"

namespace warren::broker {

struct AmqpError {
  uint16_t code = 0;
  std::string text;  // full reply text, e.g. "NOT_FOUND - no queue 'q' in vhost '/'"
  uint16_t class_id = 0;
  uint16_t method_id = 0;

  bool hard() const { return amqp::is_hard_error(code); }
};

std::string_view reply_code_name(uint16_t code);

// Builds an error whose text is prefixed by the reply code's name, as RabbitMQ writes it.
template <class... Args>
AmqpError amqp_error(uint16_t code, fmt::format_string<Args...> f, Args&&... args) {
  return AmqpError{code,
                   fmt::format("{} - {}", reply_code_name(code),
                               fmt::format(f, std::forward<Args>(args)...))};
}

// Either a value or the AMQP error that prevented it.
template <class T>
class OpResult {
 public:
  OpResult(T value) : v_(std::move(value)) {}
  OpResult(AmqpError e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  AmqpError& error() { return std::get<1>(v_); }

 private:
  std::variant<T, AmqpError> v_;
};

// For operations with no value: an empty optional means success.
using Status = std::optional<AmqpError>;

}  // namespace warren::broker
