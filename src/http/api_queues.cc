// /api/queues[/{vhost}[/{name}]]: list (paged), show, declare (PUT), delete.
#include "http/api_call.h"
#include "http/api_stats.h"

#include "broker/field_table_json.h"
#include "broker/queue.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object queue_json(const broker::Queue& q, const broker::VHost& vh,
                        const std::string& node, const SampleRange& range) {
  size_t unacked = q.unacked_count();
  const broker::Policy* p = vh.policy_for_queue(q.name());
  json::object o;
  o["name"] = q.name();
  o["vhost"] = vh.name();
  o["durable"] = q.durable();
  o["auto_delete"] = q.auto_delete();
  o["exclusive"] = q.exclusive();
  o["arguments"] = to_json(q.options().arguments);
  o["node"] = node;
  o["type"] = "classic";
  o["state"] = "running";
  o["consumers"] = q.consumer_count();
  add_lengths(o, q.stats(), q.message_count(), unacked, range);
  json::value stats = message_stats_json(q.stats(), broker::StatsKind::kQueue, range);
  if (!stats.is_null()) o["message_stats"] = std::move(stats);
  o["message_bytes"] = q.message_bytes();
  o["message_bytes_ready"] = q.message_bytes();
  o["messages_ram"] = q.messages_in_ram();
  o["policy"] = p != nullptr ? json::value(p->name) : json::value(nullptr);
  o["effective_policy_definition"] =
      p != nullptr ? json::parse(p->definition_json) : json::value(json::object());
  return o;
}

}  // namespace

void handle_queues(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& node = c.info.node_name;
  const std::string& what = seg[0];
  if (what == "queues") {
    if (seg.size() <= 2 && c.method() == bhttp::verb::get) {
      if (seg.size() == 2 && (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])))
        return not_found(r);
      // A snapshot of references (no allocation per queue): queues deleted meanwhile are left
      // out, and each item's vhost is looked up again when it is built.
      struct Snapshot {
        std::vector<std::string> vhosts;
        std::vector<std::pair<uint32_t, broker::QueueRef>> queues;
      };
      auto snap = std::make_shared<Snapshot>();
      SlicedList list;
      for (std::string& name : c.broker.list_vhosts()) {
        if ((seg.size() == 2 && name != seg[1]) || !c.visible(name)) continue;
        const broker::VHost* vh = c.broker.find_vhost(name);
        auto index = static_cast<uint32_t>(snap->vhosts.size());
        for (const auto& entry : vh->queues()) {
          const broker::QueueRef& q = entry.second;
          snap->queues.emplace_back(index, q);
          list.names.push_back(q->name());  // the queue's own string: the map key may go
        }
        snap->vhosts.push_back(std::move(name));
      }
      list.size = snap->queues.size();
      list.build = [snap, &broker = c.broker, node, range = SampleRange::of(c.target)](
                       size_t i) -> json::value {
        const auto& [vhost, q] = snap->queues[i];
        const broker::VHost* vh = broker.find_vhost(snap->vhosts[vhost]);
        if (q->deleted() || vh == nullptr) return nullptr;
        return queue_json(*q, *vh, node, range);
      };
      reply_list_later(c, std::move(list));
      return;
    }
    if (seg.size() == 4 && seg[3] == "bindings") {
      broker::VHost* bvh = c.broker.find_vhost(seg[1]);
      if (bvh == nullptr || !c.visible(seg[1]) || bvh->find_queue(seg[2]) == nullptr)
        return not_found(r);
      return handle_queue_bindings(c, *bvh, seg[2]);
    }
    if (seg.size() != 3) return not_found(r);
    broker::VHost* vh = c.broker.find_vhost(seg[1]);
    if (vh == nullptr || !c.visible(seg[1])) return not_found(r);
    const std::string& qname = seg[2];
    if (c.method() == bhttp::verb::get) {
      broker::Queue* q = vh->find_queue(qname);
      if (q == nullptr) return not_found(r);
      return reply_json(r, bhttp::status::ok, queue_json(*q, *vh, node, SampleRange::of(c.target)));
    }
    if (c.method() == bhttp::verb::put) {
      if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kConfigure, "queue",
                                        qname))
        return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
      auto body = json_body(c.req, r);
      if (!body) return;
      broker::QueueDeclare d;
      d.name = qname;
      d.durable = json_bool(*body, "durable", true);
      d.auto_delete = json_bool(*body, "auto_delete", false);
      if (const json::value* a = body->if_contains("arguments")) d.arguments = table_from_json(*a);
      bool existed = vh->find_queue(qname) != nullptr;
      auto ok = vh->declare_queue(d, 0);
      if (!ok) return reply_broker_error(r, ok.error());
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (c.method() == bhttp::verb::delete_) {
      if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kConfigure, "queue",
                                        qname))
        return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
      broker::Queue* q = vh->find_queue(qname);
      if (q == nullptr) return not_found(r);
      bool if_unused = c.target.param("if-unused") == std::optional<std::string>("true");
      bool if_empty = c.target.param("if-empty") == std::optional<std::string>("true");
      auto deleted = vh->delete_queue(qname, if_unused, if_empty, q->owner_connection());
      if (!deleted) return reply_broker_error(r, deleted.error());
      return no_content(r);
    }
    return method_not_allowed(r);
  }

  not_found(r);
}

}  // namespace warren::http
