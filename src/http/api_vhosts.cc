// /api/vhosts[/{vhost}]: list, show, create (PUT), delete.
#include "http/api_call.h"
#include "http/api_stats.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object vhost_json(broker::Broker& b, const std::string& name,
                        const std::string& node, const SampleRange& range) {
  const broker::VHost* vh = b.find_vhost(name);
  auto ready = static_cast<size_t>(vh->queue_totals().ready);
  auto unacked = static_cast<size_t>(vh->queue_totals().unacked);
  std::string description = name == "/" ? "Default virtual host" : "";
  json::object o{{"name", name},
                      {"description", description},
                      {"tags", json::array()},
                      {"metadata", json::object{{"description", description},
                                                {"tags", json::array()}}},
                      {"default_queue_type", "undefined"},
                      {"tracing", b.tracing(name)},
                      {"cluster_state", json::object{{node, "running"}}}};
  add_lengths(o, vh->stats(), ready, unacked, range);
  json::value stats = message_stats_json(vh->stats(), broker::StatsKind::kVHost, range);
  if (!stats.is_null()) o["message_stats"] = std::move(stats);
  return o;
}

}  // namespace

void handle_vhosts(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& node = c.info.node_name;
  const std::string& what = seg[0];
  if (what == "vhosts") {
    if (seg.size() == 1 && c.method() == bhttp::verb::get) {
      json::array items;
      SampleRange range = SampleRange::of(c.target);
      for (const std::string& name : c.broker.list_vhosts())
        if (c.visible(name)) items.push_back(vhost_json(c.broker, name, node, range));
      reply_list(c.target, std::move(items), r);
      return;
    }
    if (seg.size() != 2) return not_found(r);
    const std::string& name = seg[1];
    if (c.method() == bhttp::verb::get) {
      if (c.broker.find_vhost(name) == nullptr || !c.visible(name)) return not_found(r);
      return reply_json(r, bhttp::status::ok, vhost_json(c.broker, name, node, SampleRange::of(c.target)));
    }
    if (!c.administrator) return not_administrator(r);
    if (c.method() == bhttp::verb::put) {
      auto body = json_body(c.req, r);
      if (!body) return;
      bool existed = c.broker.find_vhost(name) != nullptr;
      if (auto s = c.broker.create_vhost(name)) return reply_broker_error(r, *s);
      // The management UI's tracing switch: {"tracing": true|false}, as rabbit_vhost:put_vhost.
      if (auto t = body->find("tracing"); t != body->end() && t->value().is_bool())
        c.broker.set_tracing(name, t->value().get_bool());
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (c.method() == bhttp::verb::delete_) {
      if (c.broker.find_vhost(name) == nullptr) return not_found(r);
      if (auto s = c.broker.delete_vhost(name)) return reply_broker_error(r, *s);
      return no_content(r);
    }
    return method_not_allowed(r);
  }

  not_found(r);
}

}  // namespace warren::http
