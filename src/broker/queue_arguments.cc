#include "broker/queue_arguments.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace warren::broker {
namespace {

// Largest timer RabbitMQ accepts for x-expires and x-message-ttl (milliseconds).
constexpr int64_t kMaxTimer = 4294967295;
constexpr int64_t kMaxPriority = 255;

// Integer checks: returns the RabbitMQ reason, or nullopt when valid.
std::optional<std::string> integer_reason(const FieldValue& v, bool zero_allowed,
                                          int64_t max, bool max_is_priority) {
  auto n = v.as_int();
  if (!n) return "expected integer, got " + std::string(rabbit_type_name(v));
  if (*n < 0) return "{value_negative," + std::to_string(*n) + "}";
  if (*n == 0 && !zero_allowed) return std::string("{value_zero,0}");
  if (*n > max) {
    if (max_is_priority) return "{max_value_exceeded," + std::to_string(*n) + "}";
    return "{value_too_large," + std::to_string(*n) + "," + std::to_string(max) + "}";
  }
  return std::nullopt;
}

std::optional<std::string> string_reason(const FieldValue& v) {
  if (std::holds_alternative<std::string>(v.v)) return std::nullopt;
  return "{unacceptable_type," + std::string(rabbit_type_name(v)) + "}";
}

std::optional<std::string> one_of(const FieldValue& v,
                                  std::initializer_list<std::string_view> allowed,
                                  std::string_view what) {
  if (auto r = string_reason(v)) return r;
  const std::string& s = std::get<std::string>(v.v);
  for (std::string_view a : allowed)
    if (s == a) return std::nullopt;
  return "unsupported " + std::string(what) + " '" + s + "'";
}

std::optional<std::string> reason_for(std::string_view key, const FieldValue& v) {
  if (key == "x-expires") return integer_reason(v, false, kMaxTimer, false);
  if (key == "x-message-ttl") return integer_reason(v, true, kMaxTimer, false);
  if (key == "x-max-length" || key == "x-max-length-bytes" || key == "x-max-in-memory-length" ||
      key == "x-max-in-memory-bytes")
    return integer_reason(v, true, INT64_MAX, false);
  if (key == "x-max-priority") return integer_reason(v, true, kMaxPriority, true);
  if (key == "x-dead-letter-exchange" || key == "x-dead-letter-routing-key") return string_reason(v);
  if (key == "x-overflow") {
    if (auto r = one_of(v, {"drop-head", "reject-publish", "reject-publish-dlx"}, "overflow"))
      return std::string("invalid_overflow");
    return std::nullopt;
  }
  if (key == "x-queue-type") {
    if (auto r = string_reason(v)) return r;
    const std::string& type = std::get<std::string>(v.v);
    // Quorum and stream queues are refused until Warren has them: never silently classic.
    if (type == "quorum" || type == "stream")
      return "queue type '" + type + "' is not supported by Warren (only 'classic')";
    return one_of(v, {"classic"}, "queue type");
  }
  if (key == "x-queue-mode") return one_of(v, {"default", "lazy"}, "queue mode");
  if (key == "x-queue-version") {
    auto n = v.as_int();
    if (!n || (*n != 1 && *n != 2))
      return "unsupported queue version '" + to_string(v) + "'";
    return std::nullopt;
  }
  if (key == "x-single-active-consumer") {
    if (v.as_bool()) return std::nullopt;
    return "{unacceptable_type," + std::string(rabbit_type_name(v)) + "}";
  }
  return std::nullopt;
}

}  // namespace

std::string_view rabbit_type_name(const FieldValue& v) {
  switch (v.tag()) {
    case 't': return "bool";
    case 'b': return "byte";
    case 'B': return "unsignedbyte";
    case 's': return "short";
    case 'u': return "unsignedshort";
    case 'I': return "signedint";
    case 'i': return "unsignedint";
    case 'l': return "long";
    case 'f': return "float";
    case 'd': return "double";
    case 'D': return "decimal";
    case 'S': return "longstr";
    case 'A': return "array";
    case 'T': return "timestamp";
    case 'F': return "table";
    case 'V': return "void";
    case 'x': return "binary";
  }
  return "unknown";
}

Status validate_queue_arguments(const FieldTable& args, std::string_view queue,
                                std::string_view vhost) {
  for (const auto& [key, value] : args.entries) {
    if (auto reason = reason_for(key, value))
      return make_error(ErrorCode::kPreconditionFailed, "invalid arg '{}' for queue '{}' in vhost '{}': {}", key, queue, vhost,
                        *reason);
  }
  return std::nullopt;
}

}  // namespace warren::broker
