#include "broker/policy.h"

#include <algorithm>
#include <boost/json.hpp>
#include <fmt/format.h>

namespace warren::broker {
namespace json = boost::json;

namespace {

Error invalid(std::string text) { return Error{ErrorCode::kPreconditionFailed, std::move(text)}; }

// A JSON value as Erlang's ~p prints the term rabbit_json decodes it to (RabbitMQ's error texts
// print the offending value that way): strings are binaries, objects maps.
std::string erlang_term(const json::value& v) {
  switch (v.kind()) {
    case json::kind::int64: return std::to_string(v.get_int64());
    case json::kind::uint64: return std::to_string(v.get_uint64());
    case json::kind::double_: {
      std::string s = fmt::format("{}", v.get_double());
      if (s.find_first_of(".en") == std::string::npos) s += ".0";
      return s;
    }
    case json::kind::bool_: return v.get_bool() ? "true" : "false";
    case json::kind::null: return "null";
    case json::kind::string: return fmt::format("<<\"{}\">>", std::string_view(v.get_string()));
    case json::kind::array: {
      std::string out = "[";
      for (const json::value& e : v.get_array()) {
        if (out.size() > 1) out += ",";
        out += erlang_term(e);
      }
      return out + "]";
    }
    case json::kind::object: {
      std::string out = "#{";
      for (const auto& kv : v.get_object()) {
        if (out.size() > 2) out += ",";
        out += fmt::format("<<\"{}\">> => {}", std::string_view(kv.key()), erlang_term(kv.value()));
      }
      return out + "}";
    }
  }
  return "undefined";
}

std::optional<int64_t> integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v.get_uint64());
  return std::nullopt;
}

// rabbit_policies:validate_policy0, one key. min is the smallest allowed integer.
Status integer_key(const json::value& v, int64_t min, const char* what,
                   std::optional<uint64_t>* out) {
  auto n = integer(v);
  if (!n || *n < min) return invalid(fmt::format("{} is not a valid {}", erlang_term(v), what));
  *out = static_cast<uint64_t>(*n);
  return std::nullopt;
}

Status string_key(const json::value& v, const char* what, std::optional<std::string>* out) {
  if (!v.is_string()) return invalid(fmt::format("{} is not a valid {}", erlang_term(v), what));
  *out = std::string(v.get_string());
  return std::nullopt;
}

Status validate_key(std::string_view key, const json::value& v, PolicyDefinition& d) {
  if (key == "message-ttl") return integer_key(v, 0, "message TTL", &d.message_ttl_ms);
  if (key == "expires") return integer_key(v, 1, "queue expiry", &d.expires_ms);
  if (key == "max-length") return integer_key(v, 0, "maximum length", &d.max_length);
  if (key == "max-length-bytes")
    return integer_key(v, 0, "maximum length in bytes", &d.max_length_bytes);
  if (key == "dead-letter-exchange")
    return string_key(v, "dead letter exchange name", &d.dead_letter_exchange);
  if (key == "dead-letter-routing-key")
    return string_key(v, "dead letter routing key", &d.dead_letter_routing_key);
  if (key == "alternate-exchange")
    return string_key(v, "alternate exchange name", &d.alternate_exchange);
  if (key == "overflow") {
    std::string_view s = v.is_string() ? std::string_view(v.get_string()) : std::string_view();
    if (s == "drop-head") d.overflow = Overflow::kDropHead;
    else if (s == "reject-publish") d.overflow = Overflow::kRejectPublish;
    else if (s == "reject-publish-dlx") d.overflow = Overflow::kRejectPublishDlx;
    else return invalid(fmt::format("{} is not a valid overflow value", erlang_term(v)));
    return std::nullopt;
  }
  return std::nullopt;  // unreachable: unknown keys are refused first
}

constexpr std::string_view kKnownKeys[] = {
    "message-ttl", "expires", "max-length", "max-length-bytes", "overflow",
    "dead-letter-exchange", "dead-letter-routing-key", "alternate-exchange",
};

bool known(std::string_view key) {
  return std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) != std::end(kKnownKeys);
}

// The definition's error, if any: an empty one; else the first invalid value of a known key
// (keys in alphabetical order); else the unknown keys, all of them (as RabbitMQ 3.10.8).
std::optional<std::string> validate_definition(const json::object& obj, PolicyDefinition& d) {
  if (obj.empty()) return std::string("no policy provided");
  std::vector<std::string_view> keys;
  for (const auto& kv : obj)
    if (known(kv.key())) keys.push_back(kv.key());
  std::sort(keys.begin(), keys.end());
  for (std::string_view k : keys)
    if (Status s = validate_key(k, obj.at(k), d)) return std::move(s->text);
  std::vector<std::pair<std::string, std::string>> unknown;
  for (const auto& kv : obj)
    if (!known(kv.key())) unknown.emplace_back(std::string(kv.key()), erlang_term(kv.value()));
  if (unknown.empty()) return std::nullopt;
  std::sort(unknown.begin(), unknown.end());
  std::string list;
  for (const auto& [k, v] : unknown)
    list += fmt::format("{}{{<<\"{}\">>,{}}}", list.empty() ? "" : ",", k, v);
  return fmt::format("[{}] are not recognised policy settings", list);
}

}  // namespace

std::string_view apply_to_name(PolicyApplyTo a) {
  switch (a) {
    case PolicyApplyTo::kQueues: return "queues";
    case PolicyApplyTo::kExchanges: return "exchanges";
    case PolicyApplyTo::kAll: return "all";
  }
  return "all";
}

std::optional<PolicyApplyTo> parse_apply_to(std::string_view s) {
  if (s == "queues") return PolicyApplyTo::kQueues;
  if (s == "exchanges") return PolicyApplyTo::kExchanges;
  if (s == "all") return PolicyApplyTo::kAll;
  return std::nullopt;
}

OpResult<PolicyPattern> PolicyPattern::compile(std::string_view pattern) {
  auto compiled = auth::ErlangRegex::compile(pattern);
  if (auto* e = std::get_if<auth::RegexError>(&compiled)) {
    // RabbitMQ formats the reason with ~p, which breaks a tuple that does not fit in 80 columns
    // after the text before it into one element per line, aligned after the brace.
    constexpr std::string_view kPrefix = "pattern should be regular expression but is invalid: ";
    std::string tuple = fmt::format("{{\"{}\",{}}}", e->message, e->offset);
    if (kPrefix.size() + tuple.size() > 80)
      tuple = fmt::format("{{\"{}\",\n{}{}}}", e->message, std::string(kPrefix.size() + 1, ' '),
                          e->offset);
    return invalid(std::string(kPrefix) + tuple);
  }
  PolicyPattern p;
  p.regex_ = std::get<auth::ErlangRegex>(std::move(compiled));
  return p;
}

OpResult<Policy> make_policy(std::string_view name, std::string_view pattern,
                             std::string_view definition_json, std::string_view apply_to,
                             int64_t priority) {
  Policy p;
  p.name = std::string(name);
  p.pattern = std::string(pattern);
  p.priority = priority;
  // As rabbit_policy:parse_set0, the definition is decoded first; not validation errors in
  // RabbitMQ: rabbitmqctl prints them without "Validation failed".
  json::error_code ec;
  json::value def = json::parse(definition_json, ec);
  if (ec) return Error{ErrorCode::kCommandInvalid, "JSON decoding error. Reason: badarg"};
  if (!def.is_object())
    return Error{ErrorCode::kCommandInvalid, "definition must be a JSON object"};
  // Then rabbit_policy:validate, which reports every failing part, one per line: the
  // definition's first, then apply-to's, then the pattern's.
  std::vector<std::string> errors;
  if (auto e = validate_definition(def.get_object(), p.definition)) errors.push_back(std::move(*e));
  auto a = parse_apply_to(apply_to);
  if (a) p.apply_to = *a;
  else
    errors.push_back(fmt::format(
        "apply-to '{}' unrecognised; should be 'queues', 'exchanges' or 'all'", apply_to));
  auto re = PolicyPattern::compile(pattern);
  if (re) p.regex = std::move(*re);
  else errors.push_back(std::move(re.error().text));
  if (!errors.empty()) {
    std::string text;
    for (const std::string& e : errors) text += (text.empty() ? "" : "\n") + e;
    return invalid(std::move(text));
  }
  p.definition_json = json::serialize(def);
  return p;
}

const Policy* best_policy(const std::vector<Policy>& policies, std::string_view object_name,
                          bool for_queue) {
  const Policy* best = nullptr;
  for (const Policy& p : policies) {
    if (for_queue ? !p.applies_to_queues() : !p.applies_to_exchanges()) continue;
    if (best != nullptr &&
        (p.priority < best->priority || (p.priority == best->priority && p.name >= best->name)))
      continue;
    if (p.regex.matches(object_name)) best = &p;
  }
  return best;
}

}  // namespace warren::broker
