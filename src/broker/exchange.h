// An exchange and its bindings, with the routing function of each exchange type.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/field_table.h"
#include "broker/message_stats.h"
#include "broker/headers_matcher.h"
#include "broker/ref.h"
#include "broker/exchange_destination.h"
#include "broker/topic_matcher.h"
#include "broker/topic_trie.h"

namespace warren::broker {

class Queue;
class Exchange;
class DelayStore;

enum class ExchangeType { kDirect, kFanout, kTopic, kHeaders };
std::optional<ExchangeType> parse_exchange_type(std::string_view s);
std::string_view exchange_type_name(ExchangeType t);

struct Binding {
  Destination dest;
  std::string routing_key;
  FieldTable arguments;
  std::optional<HeadersPattern> headers;  // headers exchanges
};

class Exchange {
 public:
  struct Options {
    bool durable = false;
    bool auto_delete = false;
    bool internal = false;
    FieldTable arguments;
  };

  Exchange(std::string name, ExchangeType type, Options options);
  ~Exchange();

  const std::string& name() const { return name_; }
  // How the exchange routes; for an x-delayed-message exchange, its x-delayed-type.
  ExchangeType type() const { return type_; }
  // The type it was declared with ("x-delayed-message" for a delayed exchange).
  std::string_view type_name() const;
  // x-delayed-message: where its messages wait (delayed_exchange.h); null for other types.
  DelayStore* delay_store() const { return delay_store_.get(); }
  void set_delay_store(Ref<DelayStore> s);
  const Options& options() const { return options_; }
  const std::string& alternate_exchange() const { return alternate_exchange_; }
  // The alternate exchange of the policy that applies (null: none). As RabbitMQ's
  // rabbit_policy:get_arg, the exchange's own alternate-exchange argument wins when it has one.
  void apply_policy_alternate_exchange(const std::string* policy_ae);
  // Every binding, in no particular order (a removal moves the last binding into its place).
  const std::vector<Binding>& bindings() const { return bindings_; }
  // Calls f(const Binding&) for each binding to dest, without looking at the others.
  template <class F>
  void for_each_binding_to(Destination dest, F&& f) const;
  bool has_bindings() const { return !bindings_.empty(); }

  // Adds a binding; false (and no error) if the same binding exists. Errors for bad arguments.
  bool add_binding(Destination dest, std::string_view routing_key, const FieldTable& args,
                   std::string* error);
  // Removes a binding; false if it did not exist.
  bool remove_binding(Destination dest, std::string_view routing_key, const FieldTable& args);
  // Removes every binding to dest; returns how many.
  size_t remove_bindings_to(Destination dest);

  // Calls emit(Destination) for every binding the message matches. headers() is called at most
  // once, and only by headers exchanges, so other types never decode message headers.
  template <class Emit, class HeadersFn>
  void route(std::string_view routing_key, HeadersFn&& headers, Emit&& emit) const;

  uint64_t route_mark = 0;  // scratch for cycle detection in exchange-to-exchange routing

  // publish_in / publish_out counters and their samples (management rates).
  ObjectStats& stats() { return stats_; }
  const ObjectStats& stats() const { return stats_; }

 private:
  struct DestinationHash {
    size_t operator()(const Destination& d) const {
      return std::hash<const void*>{}(d.queue) * 31 + std::hash<const void*>{}(d.exchange);
    }
  };
  void index_add(const Binding& b);
  void index_remove(const Binding& b);
  // Removes bindings_[pos], whose id is `id`, by moving the last binding into its place.
  void erase_at(size_t pos, const std::string* id);
  static std::string binding_id(Destination dest, std::string_view routing_key,
                                const FieldTable& args);

  std::string name_;
  ExchangeType type_;
  ObjectStats stats_;
  Options options_;
  Ref<DelayStore> delay_store_;
  std::string alternate_exchange_;
  std::vector<Binding> bindings_;
  // Direct exchanges: routing key -> destinations (heterogeneous lookup: no key copy per publish).
  std::unordered_map<std::string, std::vector<Destination>, StringHash, std::equal_to<>> direct_;
  // Topic exchanges: the binding keys as a trie.
  TopicTrie topic_trie_;
  // Every binding's identity (binding_id) and its index in bindings_, and each destination's
  // binding ids (pointing at the keys of positions_, which stay put): bind, unbind and the
  // removal of a queue's bindings touch only the bindings concerned, not every binding (an MQTT
  // broker binds a queue per client to one exchange).
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> positions_;
  std::unordered_map<Destination, std::vector<const std::string*>, DestinationHash> ids_by_dest_;
};

template <class F>
void Exchange::for_each_binding_to(Destination dest, F&& f) const {
  auto it = ids_by_dest_.find(dest);
  if (it == ids_by_dest_.end()) return;
  for (const std::string* id : it->second) f(bindings_[positions_.find(*id)->second]);
}

template <class Emit, class HeadersFn>
void Exchange::route(std::string_view routing_key, HeadersFn&& headers, Emit&& emit) const {
  switch (type_) {
    case ExchangeType::kDirect: {
      auto it = direct_.find(routing_key);
      if (it != direct_.end())
        for (const Destination& d : it->second) emit(d);
      break;
    }
    case ExchangeType::kFanout:
      for (const Binding& b : bindings_) emit(b.dest);
      break;
    case ExchangeType::kTopic:
      topic_trie_.match(routing_key, emit);
      break;
    case ExchangeType::kHeaders: {
      if (bindings_.empty()) break;
      const FieldTable& h = headers();
      for (const Binding& b : bindings_)
        if (b.headers->matches(h)) emit(b.dest);
      break;
    }
  }
}

}  // namespace warren::broker
