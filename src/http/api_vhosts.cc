// /api/vhosts[/{vhost}]: list, show, create (PUT), delete.
#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object vhost_json(broker::Broker& b, const std::string& name,
                        const std::string& node) {
  const broker::VHost* vh = b.find_vhost(name);
  size_t ready = 0, unacked = 0;
  for (const auto& [qname, q] : vh->queues()) {
    ready += q->message_count();
    for (const broker::Consumer* consumer : q->consumers()) unacked += consumer->unacked;
  }
  std::string description = name == "/" ? "Default virtual host" : "";
  return json::object{{"name", name},
                      {"description", description},
                      {"tags", json::array()},
                      {"metadata", json::object{{"description", description},
                                                {"tags", json::array()}}},
                      {"default_queue_type", "undefined"},
                      {"tracing", false},
                      {"cluster_state", json::object{{node, "running"}}},
                      {"messages", ready + unacked},
                      {"messages_ready", ready},
                      {"messages_unacknowledged", unacked}};
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
      for (const std::string& name : c.broker.list_vhosts())
        if (c.visible(name)) items.push_back(vhost_json(c.broker, name, node));
      reply_list(c.target, std::move(items), r);
      return;
    }
    if (seg.size() != 2) return not_found(r);
    const std::string& name = seg[1];
    if (c.method() == bhttp::verb::get) {
      if (c.broker.find_vhost(name) == nullptr || !c.visible(name)) return not_found(r);
      return reply_json(r, bhttp::status::ok, vhost_json(c.broker, name, node));
    }
    if (!c.administrator) return not_administrator(r);
    if (c.method() == bhttp::verb::put) {
      bool existed = c.broker.find_vhost(name) != nullptr;
      if (auto s = c.broker.create_vhost(name)) return reply_broker_error(r, *s);
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
