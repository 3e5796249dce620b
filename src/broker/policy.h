// RabbitMQ 3.10 policies (https://www.rabbitmq.com/parameters.html#policies): a named, vhost-wide
// rule that gives matching queues and/or exchanges settings (message-ttl, max-length,
// alternate-exchange, ...) without x-arguments. Only the highest-priority matching policy applies
// to an object; its definition is resolved against the object's own arguments per key
// (QueueSettings::resolve, Exchange::apply_policy).
//
// make_policy() validates with RabbitMQ's rules and returns its error texts (what
// `rabbitmqctl set_policy` prints after "Validation failed"), so callers (warrenctl, definitions
// import, management API) take a name, a pattern, the definition as JSON text, apply-to and
// priority and hand the result to VHost::set_policy.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/erlang_regex.h"
#include "broker/error.h"
#include "broker/queue_settings.h"

namespace warren::broker {

enum class PolicyApplyTo : uint8_t { kQueues, kExchanges, kAll };

// "queues", "exchanges", "all".
std::string_view apply_to_name(PolicyApplyTo a);
std::optional<PolicyApplyTo> parse_apply_to(std::string_view s);

// The keys Warren implements (all validated as RabbitMQ 3.10's rabbit_policies does). Keys
// RabbitMQ knows for features Warren lacks (ha-mode, queue-mode, federation-upstream, ...) are
// refused as unrecognised rather than silently ignored. max-priority is not a policy key in
// RabbitMQ 3.10 (classic queue priorities come from x-max-priority only) and is refused too.
struct PolicyDefinition {
  std::optional<uint64_t> message_ttl_ms;    // message-ttl
  std::optional<uint64_t> expires_ms;        // expires
  std::optional<uint64_t> max_length;        // max-length
  std::optional<uint64_t> max_length_bytes;  // max-length-bytes
  std::optional<Overflow> overflow;          // overflow
  std::optional<std::string> dead_letter_exchange;     // dead-letter-exchange
  std::optional<std::string> dead_letter_routing_key;  // dead-letter-routing-key
  std::optional<std::string> alternate_exchange;       // alternate-exchange (exchanges)
};

// A compiled pattern: Perl syntax (auth::ErlangRegex) and, as Erlang's re:run, unanchored
// unless the pattern anchors itself ("^amq\." matches only names starting with "amq.").
class PolicyPattern {
 public:
  // The error is RabbitMQ's: "pattern should be regular expression but is invalid: {...}".
  static OpResult<PolicyPattern> compile(std::string_view pattern);
  bool matches(std::string_view name) const { return regex_.search(name); }

 private:
  auth::ErlangRegex regex_;
};

struct Policy {
  std::string name;
  std::string pattern;
  PolicyApplyTo apply_to = PolicyApplyTo::kAll;
  int64_t priority = 0;
  std::string definition_json;  // the definition as given, re-serialized (list_policies, export)
  PolicyDefinition definition;
  PolicyPattern regex;

  bool applies_to_queues() const { return apply_to != PolicyApplyTo::kExchanges; }
  bool applies_to_exchanges() const { return apply_to != PolicyApplyTo::kQueues; }
};

// Validates and builds a policy. As RabbitMQ, every failing part is reported, one per line (the
// definition's, then apply-to's, then the pattern's). Validation errors (code kPreconditionFailed; rabbitmqctl prints
// "Error:\nValidation failed\n\n" + text) carry RabbitMQ 3.10's text, e.g.
// "-1 is not a valid message TTL", "[{<<\"foo\">>,1}] are not recognised policy settings",
// "no policy provided", "apply-to 'x' unrecognised; should be 'queues', 'exchanges' or 'all'".
// A definition that is not JSON (code kCommandInvalid; rabbitmqctl prints "Error:\n" + text):
// "JSON decoding error. Reason: badarg"; JSON but not an object: "definition must be a JSON
// object" (RabbitMQ 3.10.8 crashes with badmap there).
OpResult<Policy> make_policy(std::string_view name, std::string_view pattern,
                             std::string_view definition_json, std::string_view apply_to,
                             int64_t priority);

// The policy that applies to the named queue (for_queue) or exchange: the matching one with the
// highest priority; among equal priorities (an order RabbitMQ leaves unspecified) the first by
// name. Null when none matches.
const Policy* best_policy(const std::vector<Policy>& policies, std::string_view object_name,
                          bool for_queue);

}  // namespace warren::broker
