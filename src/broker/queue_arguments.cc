#include "broker/queue_arguments.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace warren::broker {
namespace {

// Largest timer RabbitMQ 3.10 accepts for x-expires, x-message-ttl (and the expiration property):
// ten years in milliseconds (rabbit_misc:check_expiry).
constexpr int64_t kMaxTimer = 315'360'000'000;
constexpr int64_t kMaxPriority = 255;

// RabbitMQ prints a reason with ~p: a reason built as text (rabbit_misc:format) appears as an
// Erlang string literal, in double quotes.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// check_int_arg: any integer type; the reason when not.
std::optional<std::string> int_reason(const FieldValue& v) {
  if (v.as_int()) return std::nullopt;
  return quoted("expected integer, got " + std::string(rabbit_type_name(v)));
}

// check_non_neg_int_arg, check_expires_arg, check_message_ttl_arg, check_max_priority_arg.
enum class IntRule { kNonNegative, kExpires, kTtl, kPriority, kQueueVersion };

std::optional<std::string> integer_reason(const FieldValue& v, IntRule rule) {
  if (auto r = int_reason(v)) return r;
  int64_t n = *v.as_int();
  if (rule == IntRule::kExpires && n == 0) return std::string("{value_zero,0}");
  if (n < 0) return "{value_negative," + std::to_string(n) + "}";
  if ((rule == IntRule::kExpires || rule == IntRule::kTtl) && n > kMaxTimer)
    return "{value_too_large," + std::to_string(n) + "}";
  if (rule == IntRule::kPriority && n > kMaxPriority)
    return "{max_value_exceeded," + std::to_string(n) + "}";
  if (rule == IntRule::kQueueVersion && n != 1 && n != 2)
    return quoted("unsupported queue version '" + std::to_string(n) + "'");
  return std::nullopt;
}

bool is_longstr(const FieldValue& v) { return std::holds_alternative<std::string>(v.v); }

std::string unacceptable_type(const FieldValue& v) {
  return "{unacceptable_type," + std::string(rabbit_type_name(v)) + "}";
}

// A string argument with a fixed set of values; `unknown` is the reason for any other string.
std::optional<std::string> one_of(const FieldValue& v,
                                  std::initializer_list<std::string_view> allowed,
                                  const std::string& unknown) {
  if (!is_longstr(v)) return unacceptable_type(v);
  const std::string& s = std::get<std::string>(v.v);
  for (std::string_view a : allowed)
    if (s == a) return std::nullopt;
  return unknown;
}

// RabbitMQ 3.10's declare_args() validators, in its order (which decides the error reported
// when several arguments are invalid), restricted to a classic queue's arguments.
std::optional<std::string> reason_for(std::string_view key, const FieldValue& v,
                                      const FieldTable& args) {
  if (key == "x-expires") return integer_reason(v, IntRule::kExpires);
  if (key == "x-message-ttl") return integer_reason(v, IntRule::kTtl);
  if (key == "x-dead-letter-exchange") {
    if (!is_longstr(v)) return unacceptable_type(v);
    return std::nullopt;
  }
  if (key == "x-dead-letter-routing-key") {
    if (!is_longstr(v)) return unacceptable_type(v);
    if (args.find("x-dead-letter-exchange") == nullptr)
      return std::string("routing_key_but_no_dlx_defined");
    return std::nullopt;
  }
  if (key == "x-max-length" || key == "x-max-length-bytes")
    return integer_reason(v, IntRule::kNonNegative);
  if (key == "x-max-priority") return integer_reason(v, IntRule::kPriority);
  if (key == "x-overflow")
    return one_of(v, {"drop-head", "reject-publish", "reject-publish-dlx"}, "invalid_overflow");
  if (key == "x-queue-mode") {
    const std::string* s = std::get_if<std::string>(&v.v);
    return one_of(v, {"default", "lazy"},
                  quoted("unsupported queue mode '" + (s ? *s : std::string()) + "'"));
  }
  if (key == "x-queue-version") return integer_reason(v, IntRule::kQueueVersion);
  if (key == "x-single-active-consumer") {
    if (v.as_bool()) return std::nullopt;
    return unacceptable_type(v);
  }
  if (key == "x-queue-type") {
    if (!is_longstr(v)) return unacceptable_type(v);
    const std::string& type = std::get<std::string>(v.v);
    if (type == "classic") return std::nullopt;
    // Quorum and stream queues are refused until Warren has them: never silently classic.
    if (type == "quorum" || type == "stream")
      return "queue type '" + type + "' is not supported by Warren (only 'classic')";
    return quoted("unsupported queue type '" + type + "'");
  }
  return std::nullopt;
}

constexpr std::string_view kValidated[] = {
    "x-expires",      "x-message-ttl",      "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-max-length",   "x-max-length-bytes", "x-max-priority",         "x-overflow",
    "x-queue-mode",   "x-queue-version",    "x-single-active-consumer", "x-queue-type",
};

// Arguments of the other queue types (quorum, stream), refused on a classic queue.
constexpr std::string_view kOtherTypesOnly[] = {
    "x-dead-letter-strategy", "x-max-in-memory-length", "x-max-in-memory-bytes",
    "x-quorum-initial-group-size", "x-delivery-limit", "x-queue-leader-locator",
    "x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size",
};

template <size_t N>
bool listed(const std::string_view (&list)[N], std::string_view key) {
  for (std::string_view k : list)
    if (k == key) return true;
  return false;
}

Error invalid_arg(std::string_view key, std::string_view queue, std::string_view vhost,
                  const std::string& reason) {
  return make_error(ErrorCode::kPreconditionFailed, "invalid arg '{}' for queue '{}' in vhost '{}': {}",
                    key, queue, vhost, reason);
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
  // As RabbitMQ: the channel checks the dead-letter exchange's type first, then the queue type
  // is checked, then the other arguments in a fixed order, then arguments of other queue types.
  if (const FieldValue* dlx = args.find("x-dead-letter-exchange"); dlx && !is_longstr(*dlx))
    return make_error(ErrorCode::kPreconditionFailed,
                      "invalid type '{}' for arg 'x-dead-letter-exchange' in queue '{}' in vhost "
                      "'{}'",
                      rabbit_type_name(*dlx), queue, vhost);
  if (const FieldValue* type = args.find("x-queue-type"))
    if (auto reason = reason_for("x-queue-type", *type, args))
      return invalid_arg("x-queue-type", queue, vhost, *reason);
  for (std::string_view key : kValidated)
    if (const FieldValue* v = args.find(key))
      if (auto reason = reason_for(key, *v, args)) return invalid_arg(key, queue, vhost, *reason);
  for (const auto& [key, value] : args.entries)
    if (listed(kOtherTypesOnly, key))
      return make_error(ErrorCode::kPreconditionFailed,
                        "invalid arg '{}' for queue '{}' in vhost '{}' of queue type "
                        "rabbit_classic_queue",
                        key, queue, vhost);
  return std::nullopt;
}

Status validate_consume_arguments(const FieldTable& args, std::string_view queue,
                                  std::string_view vhost) {
  if (const FieldValue* p = args.find("x-priority"))
    if (auto reason = int_reason(*p)) return invalid_arg("x-priority", queue, vhost, *reason);
  if (const FieldValue* c = args.find("x-cancel-on-ha-failover"); c && !c->as_bool())
    return invalid_arg("x-cancel-on-ha-failover", queue, vhost, unacceptable_type(*c));
  if (args.find("x-stream-offset") != nullptr)
    return make_error(ErrorCode::kPreconditionFailed,
                      "invalid arg 'x-stream-offset' for queue '{}' in vhost '{}' of queue type "
                      "rabbit_classic_queue",
                      queue, vhost);
  return std::nullopt;
}

}  // namespace warren::broker
