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
  if (positions_.count(id)) return false;
  Binding b{dest, std::string(routing_key), args, std::nullopt};
  if (type_ == ExchangeType::kHeaders) {
    HeadersPattern p;
    if (!HeadersPattern::parse(args, &p, error)) return false;
    b.headers = std::move(p);
  }
  auto [entry, inserted] = positions_.emplace(std::move(id), bindings_.size());
  ids_by_dest_[dest].push_back(&entry->first);
  bindings_.push_back(std::move(b));
  index_add(bindings_.back());
  return true;
}

bool Exchange::remove_binding(Destination dest, std::string_view routing_key,
                              const FieldTable& args) {
  auto entry = positions_.find(binding_id(dest, routing_key, args));
  if (entry == positions_.end()) return false;
  index_remove(bindings_[entry->second]);
  auto ids = ids_by_dest_.find(dest);
  std::erase(ids->second, &entry->first);
  if (ids->second.empty()) ids_by_dest_.erase(ids);
  erase_at(entry->second, &entry->first);
  return true;
}

size_t Exchange::remove_bindings_to(Destination dest) {
  // One at a time, so that index_remove sees the destination's bindings still left.
  size_t removed = 0;
  for (auto ids = ids_by_dest_.find(dest); ids != ids_by_dest_.end();
       ids = ids_by_dest_.find(dest)) {
    const std::string* id = ids->second.back();
    index_remove(bindings_[positions_.find(*id)->second]);
    ids->second.pop_back();
    if (ids->second.empty()) ids_by_dest_.erase(ids);
    erase_at(positions_.find(*id)->second, id);
    ++removed;
  }
  return removed;
}

void Exchange::erase_at(size_t pos, const std::string* id) {
  const size_t last = bindings_.size() - 1;
  if (pos != last) {
    bindings_[pos] = std::move(bindings_[last]);
    const Binding& moved = bindings_[pos];
    positions_.find(binding_id(moved.dest, moved.routing_key, moved.arguments))->second = pos;
  }
  bindings_.pop_back();
  positions_.erase(positions_.find(*id));  // last: id points into this entry's key
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
  // Keep the destination while another binding with the same key still targets it (b itself is
  // still among the destination's bindings).
  size_t same = 0;
  for_each_binding_to(b.dest, [&](const Binding& o) {
    if (o.routing_key == b.routing_key) ++same;
  });
  if (same > 1) return;
  auto it = direct_.find(b.routing_key);
  if (it == direct_.end()) return;
  std::erase(it->second, b.dest);
  if (it->second.empty()) direct_.erase(it);
}

}  // namespace warren::broker
