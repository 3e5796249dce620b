#include "broker/queue_settings.h"

#include <algorithm>

#include "broker/policy.h"

namespace warren::broker {

QueueSettings QueueSettings::from_arguments(const FieldTable& args) {
  QueueSettings s;
  auto integer = [&](std::string_view key) -> std::optional<uint64_t> {
    const FieldValue* v = args.find(key);
    if (v == nullptr) return std::nullopt;
    auto n = v->as_int();
    if (!n || *n < 0) return std::nullopt;
    return static_cast<uint64_t>(*n);
  };
  auto text = [&](std::string_view key) -> std::optional<std::string> {
    const FieldValue* v = args.find(key);
    if (v == nullptr) return std::nullopt;
    auto str = v->as_string();
    if (!str) return std::nullopt;
    return std::string(*str);
  };
  s.message_ttl_ms = integer("x-message-ttl");
  s.expires_ms = integer("x-expires");
  s.max_length = integer("x-max-length");
  s.max_length_bytes = integer("x-max-length-bytes");
  if (auto o = text("x-overflow")) {
    if (*o == "reject-publish") s.overflow = Overflow::kRejectPublish;
    if (*o == "reject-publish-dlx") s.overflow = Overflow::kRejectPublishDlx;
  }
  s.dead_letter_exchange = text("x-dead-letter-exchange");
  s.dead_letter_routing_key = text("x-dead-letter-routing-key");
  if (auto p = integer("x-max-priority")) s.max_priority = static_cast<uint8_t>(std::min<uint64_t>(*p, 255));
  if (const FieldValue* v = args.find("x-single-active-consumer"))
    s.single_active_consumer = v->as_bool().value_or(false);
  return s;
}

QueueSettings QueueSettings::resolve(const FieldTable& args, const PolicyDefinition* policy) {
  QueueSettings s = from_arguments(args);
  if (policy == nullptr) return s;
  auto lower = [](std::optional<uint64_t>& arg, const std::optional<uint64_t>& pol) {
    if (pol) arg = arg ? std::min(*arg, *pol) : *pol;
  };
  lower(s.message_ttl_ms, policy->message_ttl_ms);
  lower(s.expires_ms, policy->expires_ms);
  lower(s.max_length, policy->max_length);
  lower(s.max_length_bytes, policy->max_length_bytes);
  if (args.find("x-overflow") == nullptr && policy->overflow) s.overflow = *policy->overflow;
  if (!s.dead_letter_exchange) s.dead_letter_exchange = policy->dead_letter_exchange;
  if (!s.dead_letter_routing_key) s.dead_letter_routing_key = policy->dead_letter_routing_key;
  return s;
}

}  // namespace warren::broker
