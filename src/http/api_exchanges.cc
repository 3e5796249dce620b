// /api/exchanges[/{vhost}[/{name}]] (list, show, declare with PUT, delete) and the bindings:
// /api/bindings[/{vhost}], /api/exchanges/{vhost}/{name}/bindings/{source|destination},
// /api/queues/{vhost}/{name}/bindings, /api/bindings/{vhost}/e/{x}/{q|e}/{dest}[/{props}]
// (list, POST to create with a Location header, GET one, DELETE by properties_key).
#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>

#include "broker/field_table_json.h"
#include "broker/queue.h"
#include "http/api_call.h"
#include "http/api_stats.h"
#include "http/queue_walk.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

// RabbitMQ's exchange names for the default exchange in the API: "" (and amq.default in paths).
std::string exchange_name(const std::string& n) { return n == "amq.default" ? "" : n; }

std::string percent_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

// A binding's id in URLs: the routing key, percent-encoded, and "~" plus a hash of the
// arguments when there are any (RabbitMQ's pack_binding_props; the hash is opaque to clients).
std::string properties_key(const std::string& key, const FieldTable& args) {
  std::string out = percent_encode(key);
  if (!args.empty()) {
    size_t h = std::hash<std::string>{}(json::serialize(to_json(args)));
    out += "~" + std::to_string(h);
  }
  return out;
}

json::object binding_json(const std::string& vhost, const std::string& source,
                          const std::string& dest, bool to_queue, const std::string& key,
                          const FieldTable& args) {
  return json::object{{"source", source},
                      {"vhost", vhost},
                      {"destination", dest},
                      {"destination_type", to_queue ? "queue" : "exchange"},
                      {"routing_key", key},
                      {"arguments", to_json(args)},
                      {"properties_key", properties_key(key, args)}};
}

using Keep = std::function<bool(const std::string& dest, bool to_queue)>;

// The bindings from one exchange that `keep` accepts; from the default exchange (""), only the
// implicit one of `queue` (a queue is bound to it by its own name).
void exchange_bindings(const broker::VHost& vh, const std::string& source,
                       const std::string& queue, json::array& out, const Keep& keep) {
  if (source.empty()) {
    if (vh.queues().contains(queue) && keep(queue, true))
      out.push_back(binding_json(vh.name(), "", queue, true, queue, FieldTable{}));
    return;
  }
  auto found = vh.exchanges().find(source);
  if (found == vh.exchanges().end()) return;
  const broker::Exchange* x = found->second.get();
  for (const broker::Binding& b : x->bindings()) {
    bool to_queue = b.dest.queue != nullptr;
    const std::string& dest = to_queue ? b.dest.queue->name() : b.dest.exchange->name();
    if (keep(dest, to_queue))
      out.push_back(binding_json(vh.name(), source, dest, to_queue, b.routing_key, b.arguments));
  }
}

// Every binding of some vhosts, over as many loop turns as it takes: per vhost, the default
// exchange's binding of each queue first (as RabbitMQ lists them; here in name order), then
// each exchange's, resuming by exchange name and position.
class BindingWalk {
 public:
  explicit BindingWalk(std::vector<std::string> vhosts) : vhosts_(std::move(vhosts)) {}

  bool step(broker::Broker& broker, Deadline deadline, json::array& out) {
    size_t n = 0;
    for (; vhost_ < vhosts_.size(); ++vhost_, queues_.reset(), exchanges_.reset()) {
      const broker::VHost* vh = broker.find_vhost(vhosts_[vhost_]);
      if (vh == nullptr) continue;
      if (!exchanges_) {
        if (!queues_) queues_.emplace(std::vector<std::string>{vhosts_[vhost_]}, false);
        bool done = queues_->step(broker, deadline, [&](const broker::VHost&, const broker::Queue& q) {
          out.push_back(binding_json(vh->name(), "", q.name(), true, q.name(), FieldTable{}));
          return true;
        });
        if (!done) return false;
        exchanges_.emplace();
        for (const auto& [xname, x] : vh->exchanges())
          if (!xname.empty()) exchanges_->names.push_back(xname);
        std::sort(exchanges_->names.begin(), exchanges_->names.end());
      }
      Exchanges& xs = *exchanges_;
      for (; xs.next < xs.names.size(); ++xs.next, xs.binding = 0) {
        auto found = vh->exchanges().find(xs.names[xs.next]);
        if (found == vh->exchanges().end()) continue;
        const broker::Exchange* x = found->second.get();
        const auto& bindings = x->bindings();
        while (xs.binding < bindings.size()) {
          const broker::Binding& b = bindings[xs.binding++];
          bool to_queue = b.dest.queue != nullptr;
          out.push_back(binding_json(vh->name(), x->name(),
                                     to_queue ? b.dest.queue->name() : b.dest.exchange->name(),
                                     to_queue, b.routing_key, b.arguments));
          if (slice_spent(++n, deadline)) return false;
        }
      }
    }
    return true;
  }

 private:
  struct Exchanges {
    std::vector<std::string> names;
    size_t next = 0;     // index into names
    size_t binding = 0;  // position in that exchange's bindings (bindings added or removed
                         // meanwhile may shift it: a live listing, not a snapshot)
  };
  std::vector<std::string> vhosts_;
  size_t vhost_ = 0;
  std::optional<QueueWalk> queues_;       // the default exchange's bindings of this vhost
  std::optional<Exchanges> exchanges_;    // then the other exchanges'
};

json::object exchange_json(const broker::Exchange& x, const std::string& vhost,
                           const broker::VHost& vh, const SampleRange& range) {
  const broker::Policy* p = vh.policy_for_exchange(x.name());
  json::object o{{"name", x.name()},
                      {"vhost", vhost},
                      {"type", std::string(x.type_name())},
                      {"durable", x.options().durable},
                      {"auto_delete", x.options().auto_delete},
                      {"internal", x.options().internal},
                      {"arguments", to_json(x.options().arguments)},
                      {"policy", p != nullptr ? json::value(p->name) : json::value(nullptr)},
                      {"user_who_performed_action", ""}};
  json::value stats = message_stats_json(x.stats(), broker::StatsKind::kExchange, range);
  if (!stats.is_null()) o["message_stats"] = std::move(stats);
  return o;
}

void handle_binding_paths(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  // /api/bindings[/{vhost}]
  if (seg.size() <= 2) {
    if (c.method() != bhttp::verb::get) return method_not_allowed(r);
    if (seg.size() == 2 && (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])))
      return not_found(r);
    std::vector<std::string> vhosts;
    for (std::string& name : c.broker.list_vhosts())
      if ((seg.size() == 1 || name == seg[1]) && c.visible(name)) vhosts.push_back(std::move(name));
    return reply_list_later(c, [walk = BindingWalk(std::move(vhosts)), &broker = c.broker](
                                   ListOut& out, Deadline deadline) mutable {
      return walk.step(broker, deadline, out.items);
    });
  }
  // /api/bindings/{vhost}/e/{source}/{q|e}/{dest}[/{props}]
  if (seg.size() < 6 || seg[2] != "e" || (seg[4] != "q" && seg[4] != "e")) return not_found(r);
  broker::VHost* vh = c.broker.find_vhost(seg[1]);
  if (vh == nullptr || !c.visible(seg[1])) return not_found(r);
  const std::string source = exchange_name(seg[3]);
  const std::string& dest = seg[5];
  const bool to_queue = seg[4] == "q";
  if (vh->find_exchange(source) == nullptr ||
      (to_queue ? vh->find_queue(dest) == nullptr : vh->find_exchange(dest) == nullptr))
    return not_found(r);
  json::array matching;
  exchange_bindings(*vh, source, dest, matching,
                    [&](const std::string& d, bool q) { return d == dest && q == to_queue; });
  if (seg.size() == 6) {
    if (c.method() == bhttp::verb::get) return reply_json(r, bhttp::status::ok, matching);
    if (c.method() != bhttp::verb::post) return method_not_allowed(r);
    auto body = json_body(c.req, r);
    if (!body) return;
    std::string key = json_string(*body, "routing_key");
    FieldTable args;
    if (const json::value* a = body->if_contains("arguments")) args = table_from_json(*a);
    // Write on the destination, read on the source, as queue.bind / exchange.bind.
    if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kWrite,
                                       to_queue ? "queue" : "exchange", dest))
      return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
    if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kRead, "exchange",
                                       source))
      return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
    broker::Status s = to_queue ? vh->bind_queue(dest, source, key, args, 0)
                                : vh->bind_exchange(dest, source, key, args);
    if (s) return reply_broker_error(r, *s);
    // Relative to the request URL, encoded once more as RabbitMQ does.
    r.set(bhttp::field::location, percent_encode(dest) + "/" +
                                      percent_encode(properties_key(key, args)));
    return no_content(r, bhttp::status::created);
  }
  if (seg.size() != 7) return not_found(r);
  for (json::value& b : matching) {
    json::object& o = b.as_object();
    // The path segment arrives decoded ("a.#"); the key is kept encoded ("a.%23").
    if (o.at("properties_key").as_string() != percent_encode(seg[6])) continue;
    if (c.method() == bhttp::verb::get) return reply_json(r, bhttp::status::ok, o);
    if (c.method() != bhttp::verb::delete_) return method_not_allowed(r);
    if (source.empty())
      return reply_error(r, bhttp::status::bad_request, "bad_request",
                         "operation not permitted on the default exchange");
    std::string key(o.at("routing_key").as_string());
    FieldTable args = table_from_json(o.at("arguments"));
    if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kWrite,
                                       to_queue ? "queue" : "exchange", dest))
      return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
    broker::Status s = to_queue ? vh->unbind_queue(dest, source, key, args, 0)
                                : vh->unbind_exchange(dest, source, key, args);
    if (s) return reply_broker_error(r, *s);
    return no_content(r);
  }
  not_found(r);
}

}  // namespace

void handle_bindings(ApiCall& c) { handle_binding_paths(c); }

void handle_queue_bindings(ApiCall& c, broker::VHost& vh, const std::string& queue) {
  if (c.method() != bhttp::verb::get) return method_not_allowed(c.r);
  json::array items;
  auto to_this_queue = [&](const std::string& d, bool to_queue) { return to_queue && d == queue; };
  exchange_bindings(vh, "", queue, items, to_this_queue);
  std::vector<std::string> sources;
  for (const auto& [xname, x] : vh.exchanges())
    if (!xname.empty()) sources.push_back(xname);
  std::sort(sources.begin(), sources.end());
  for (const std::string& source : sources)
    exchange_bindings(vh, source, queue, items, to_this_queue);
  reply_json(c.r, bhttp::status::ok, items);
}

void handle_exchanges(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  if (seg.size() <= 2 && c.method() == bhttp::verb::get) {
    if (seg.size() == 2 && (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])))
      return not_found(r);
    // A snapshot of (vhost, exchange) names; the items are built a slice per loop turn (an
    // exchange deleted meanwhile is left out) and sorted on the worker.
    std::vector<std::pair<std::string, std::string>> names;
    for (const std::string& vhost : c.broker.list_vhosts()) {
      if ((seg.size() == 2 && vhost != seg[1]) || !c.visible(vhost)) continue;
      for (const auto& [xname, x] : c.broker.find_vhost(vhost)->exchanges())
        names.emplace_back(vhost, xname);
    }
    return reply_snapshot_later(c, std::move(names), [&broker = c.broker,
                                                      range = SampleRange::of(c.target)](
                                                         const auto& name, json::array& out) {
      const auto& [vhost, xname] = name;
      const broker::VHost* vh = broker.find_vhost(vhost);
      if (vh == nullptr) return;
      auto x = vh->exchanges().find(xname);
      if (x != vh->exchanges().end()) out.push_back(exchange_json(*x->second, vhost, *vh, range));
    });
  }
  if (seg.size() < 3) return not_found(r);
  broker::VHost* vh = c.broker.find_vhost(seg[1]);
  if (vh == nullptr || !c.visible(seg[1])) return not_found(r);
  const std::string name = exchange_name(seg[2]);
  // /api/exchanges/{vhost}/{name}/bindings/{source|destination}
  if (seg.size() == 5 && seg[3] == "bindings" && (seg[4] == "source" || seg[4] == "destination")) {
    if (vh->find_exchange(name) == nullptr) return not_found(r);
    bool as_source = seg[4] == "source";
    if (as_source && name.empty()) {  // every queue's implicit binding: maybe 100,000
      return reply_list_later(c, [walk = QueueWalk({seg[1]}, false), &broker = c.broker](
                                     ListOut& out, Deadline deadline) mutable {
        return walk.step(broker, deadline, [&](const broker::VHost& v, const broker::Queue& q) {
          out.items.push_back(binding_json(v.name(), "", q.name(), true, q.name(), FieldTable{}));
          return true;
        });
      });
    }
    json::array items;
    if (as_source) {
      exchange_bindings(*vh, name, "", items, [](const std::string&, bool) { return true; });
    } else {
      std::vector<std::string> sources;
      for (const auto& [xname, x] : vh->exchanges())
        if (!xname.empty()) sources.push_back(xname);
      std::sort(sources.begin(), sources.end());
      for (const std::string& source : sources)
        exchange_bindings(*vh, source, "", items,
                          [&](const std::string& d, bool to_queue) { return !to_queue && d == name; });
    }
    return reply_json(r, bhttp::status::ok, items);
  }
  if (seg.size() != 3) return not_found(r);
  if (c.method() == bhttp::verb::get) {
    broker::Exchange* x = vh->find_exchange(name);
    if (x == nullptr) return not_found(r);
    return reply_json(r, bhttp::status::ok, exchange_json(*x, seg[1], *vh, SampleRange::of(c.target)));
  }
  if (c.method() == bhttp::verb::put || c.method() == bhttp::verb::delete_) {
    if (name.empty())  // amq.* names are refused by the broker, as for AMQP clients
      return reply_error(r, bhttp::status::bad_request, "bad_request",
                         "operation not permitted on the default exchange");
    if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kConfigure,
                                       "exchange", name))
      return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
  }
  if (c.method() == bhttp::verb::put) {
    auto body = json_body(c.req, r);
    if (!body) return;
    std::string type = json_string(*body, "type");
    broker::ExchangeDeclare d;
    d.name = name;
    d.type = type;
    d.durable = json_bool(*body, "durable", true);
    d.auto_delete = json_bool(*body, "auto_delete", false);
    d.internal = json_bool(*body, "internal", false);
    if (const json::value* a = body->if_contains("arguments")) d.arguments = table_from_json(*a);
    bool existed = vh->find_exchange(name) != nullptr;
    if (broker::Status s = vh->declare_exchange(d)) return reply_broker_error(r, *s);
    return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
  }
  if (c.method() == bhttp::verb::delete_) {
    if (vh->find_exchange(name) == nullptr) return not_found(r);
    if (broker::Status s = vh->delete_exchange(name, c.target.flag("if-unused")))
      return reply_broker_error(r, *s);
    return no_content(r);
  }
  method_not_allowed(r);
}

}  // namespace warren::http
