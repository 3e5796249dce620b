// /api/queues[/{vhost}[/{name}]]: list (paged), show, declare (PUT), delete.
#include <chrono>
#include <optional>
#include <set>

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

using Deadline = std::chrono::steady_clock::time_point;

// The queues of some vhosts in name order (each vhost's queue_names()), over several loop
// turns: a turn ends after a queue, and the next resumes after that name, so queues declared or
// deleted in between are simply seen or not.
struct QueueWalk {
  std::vector<std::string> vhosts;
  size_t vhost = 0;
  std::optional<std::string> after;  // the last name listed in this vhost

  // Calls f(queue, vhost) until the deadline; true once every vhost is done.
  template <class F>
  bool step(broker::Broker& broker, Deadline deadline, F&& f) {
    for (; vhost < vhosts.size(); ++vhost, after.reset()) {
      const broker::VHost* vh = broker.find_vhost(vhosts[vhost]);
      if (vh == nullptr) continue;
      const auto& names = vh->queue_names();
      size_t n = 0;
      for (auto it = after ? names.upper_bound(*after) : names.begin(); it != names.end(); ++it) {
        f(*vh->queues().find(*it)->second, *vh);
        if ((++n & 15) == 0 && std::chrono::steady_clock::now() > deadline) {
          after = std::string(*it);
          return false;
        }
      }
    }
    return true;
  }
};

// A page in the default order (by name) without a filter: a merge of the vhosts' name indexes up
// to the page, so a page of 100 out of 100,000 queues builds 100 items and sorts nothing. Ties
// between vhosts go in vhost order (reversed with sort_reverse), as a stable sort would.
void reply_page_by_name(ApiCall& c, const std::vector<std::string>& vhost_names,
                        const SampleRange& range) {
  int64_t page = 0, page_size = 0;
  if (!read_paging(c.target, &page, &page_size, c.r)) return;
  bool reverse = c.target.flag("sort_reverse");
  struct Cursor {
    const broker::VHost* vh;
    std::set<std::string_view>::const_iterator next, end;            // forward
    std::set<std::string_view>::const_reverse_iterator rnext, rend;  // sort_reverse
    bool done() const { return rnext == rend && next == end; }
    std::string_view name(bool reverse) const { return reverse ? *rnext : *next; }
  };
  std::vector<Cursor> cursors;
  size_t total = 0;
  for (const std::string& name : vhost_names) {
    const broker::VHost* vh = c.broker.find_vhost(name);
    const auto& names = vh->queue_names();
    total += names.size();
    if (reverse)
      cursors.push_back({vh, names.end(), names.end(), names.rbegin(), names.rend()});
    else
      cursors.push_back({vh, names.begin(), names.end(), names.rend(), names.rend()});
  }
  size_t from = static_cast<size_t>(page - 1) * static_cast<size_t>(page_size);
  std::vector<std::pair<const broker::VHost*, std::string_view>> picked;
  for (size_t i = 0; i < from + static_cast<size_t>(page_size); ++i) {
    Cursor* best = nullptr;
    for (Cursor& cur : cursors) {
      if (cur.done()) continue;
      std::string_view n = cur.name(reverse);
      if (best == nullptr || (reverse ? n >= best->name(true) : n < best->name(false))) best = &cur;
    }
    if (best == nullptr) break;
    if (i >= from) picked.emplace_back(best->vh, best->name(reverse));
    if (reverse) ++best->rnext; else ++best->next;
  }
  const std::string& node = c.info.node_name;
  reply_page(c.target, page, page_size, total, total, [&](size_t i) -> json::value {
    const auto& [vh, name] = picked[i - from];
    return queue_json(*vh->queues().find(name)->second, *vh, node, range);
  }, c.r);
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
      std::vector<std::string> vhosts;
      for (std::string& name : c.broker.list_vhosts())
        if ((seg.size() == 1 || name == seg[1]) && c.visible(name)) vhosts.push_back(std::move(name));
      SampleRange range = SampleRange::of(c.target);
      auto name = c.target.param("name");
      bool filtered = name && !name->empty();
      if (c.target.param("sort").value_or("name") == "name" && c.target.param("page") && !filtered)
        return reply_page_by_name(c, vhosts, range);
      // Everything else builds every (matching) item, a slice per loop turn, and leaves the rest
      // to reply_list on the worker.
      std::string substring = filtered && !c.target.flag("use_regex") ? *name : "";
      reply_list_later(c, [walk = QueueWalk{std::move(vhosts)}, &broker = c.broker, node, range,
                           substring](ListOut& out, Deadline deadline) mutable {
        return walk.step(broker, deadline, [&](const broker::Queue& q, const broker::VHost& vh) {
          if (substring.empty() || q.name().find(substring) != std::string::npos)
            out.items.push_back(queue_json(q, vh, node, range));
          else
            ++out.left_out;
        });
      });
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
