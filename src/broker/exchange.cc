#include "broker/exchange.h"

#include <algorithm>

#include "broker/delayed_exchange.h"

namespace warren::broker {

std::optional<ExchangeType> parse_exchange_type(std::string_view s) {
  if (s == "direct") return ExchangeType::kDirect;
  if (s == "fanout") return ExchangeType::kFanout;
  if (s == "topic") return ExchangeType::kTopic;
  if (s == "headers") return ExchangeType::kHeaders;
  return std::nullopt;
}

std::string_view exchange_type_name(ExchangeType t) {
  switch (t) {
    case ExchangeType::kDirect: return "direct";
    case ExchangeType::kFanout: return "fanout";
    case ExchangeType::kTopic: return "topic";
    case ExchangeType::kHeaders: return "headers";
  }
  return "direct";
}

Exchange::Exchange(std::string name, ExchangeType type, Options options)
    : name_(std::move(name)), type_(type), options_(std::move(options)) {
  if (const FieldValue* ae = options_.arguments.find("alternate-exchange"))
    if (auto s = ae->as_string()) alternate_exchange_ = std::string(*s);
}

void Exchange::apply_policy_alternate_exchange(const std::string* policy_ae) {
  if (options_.arguments.find("alternate-exchange") != nullptr) return;
  alternate_exchange_ = policy_ae != nullptr ? *policy_ae : std::string();
}

Exchange::~Exchange() {
  // Gone without a delete (the broker stops): journaled delayed messages stay for the next start.
  if (delay_store_) delay_store_->detach();
}

std::string_view Exchange::type_name() const {
  return delay_store_ ? kDelayedExchangeType : exchange_type_name(type_);
}

void Exchange::set_delay_store(Ref<DelayStore> s) { delay_store_ = std::move(s); }

std::string Exchange::binding_id(Destination dest, std::string_view routing_key,
                                 const FieldTable& args) {
  std::string id(reinterpret_cast<const char*>(&dest), sizeof dest);  // the two pointers
  id.append(routing_key);
  id.push_back('\0');  // routing keys are UTF-8 short strings: the key ends here
  if (!args.empty()) id += encode_table_body(args);
  return id;
}

bool Exchange::add_binding(Destination dest, std::string_view routing_key,
                           const FieldTable& args, std::string* error) {
  std::string id = binding_id(dest, routing_key, args);
  if (binding_ids_.count(id)) return false;
  Binding b{dest, std::string(routing_key), args, std::nullopt};
  if (type_ == ExchangeType::kHeaders) {
    HeadersPattern p;
    if (!HeadersPattern::parse(args, &p, error)) return false;
    b.headers = std::move(p);
  }
  index_add(b);
  bindings_.push_back(std::move(b));
  binding_ids_.insert(std::move(id));
  return true;
}

bool Exchange::remove_binding(Destination dest, std::string_view routing_key,
                              const FieldTable& args) {
  auto id = binding_ids_.find(binding_id(dest, routing_key, args));
  if (id == binding_ids_.end()) return false;
  binding_ids_.erase(id);
  auto it = std::find_if(bindings_.begin(), bindings_.end(), [&](const Binding& b) {
    return b.dest == dest && b.routing_key == routing_key && b.arguments == args;
  });
  if (it == bindings_.end()) return false;
  index_remove(*it);
  bindings_.erase(it);
  return true;
}

size_t Exchange::remove_bindings_to(Destination dest) {
  size_t removed = std::erase_if(bindings_, [&](const Binding& b) {
    if (!(b.dest == dest)) return false;
    binding_ids_.erase(binding_id(b.dest, b.routing_key, b.arguments));
    if (type_ == ExchangeType::kTopic) topic_trie_.remove(b.routing_key, b.dest);
    return true;
  });
  if (removed > 0 && type_ == ExchangeType::kDirect) {
    // Rebuild the index: several removed bindings may share a key (differing by arguments).
    direct_.clear();
    for (const Binding& b : bindings_) index_add(b);
  }
  return removed;
}

void Exchange::index_add(const Binding& b) {
  if (type_ == ExchangeType::kTopic) topic_trie_.add(b.routing_key, b.dest);
  if (type_ != ExchangeType::kDirect) return;
  auto& dests = direct_[b.routing_key];
  // Bindings that differ only by arguments route once to the same destination.
  if (std::find(dests.begin(), dests.end(), b.dest) == dests.end()) dests.push_back(b.dest);
}

void Exchange::index_remove(const Binding& b) {
  if (type_ == ExchangeType::kTopic) topic_trie_.remove(b.routing_key, b.dest);
  if (type_ != ExchangeType::kDirect) return;
  // Keep the destination while another binding with the same key still targets it.
  size_t same = 0;
  for (const Binding& o : bindings_)
    if (o.dest == b.dest && o.routing_key == b.routing_key) ++same;
  if (same > 1) return;
  auto it = direct_.find(b.routing_key);
  if (it == direct_.end()) return;
  std::erase(it->second, b.dest);
  if (it->second.empty()) direct_.erase(it);
}

}  // namespace warren::broker
