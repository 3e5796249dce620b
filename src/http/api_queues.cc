// /api/queues[/{vhost}[/{name}]]: list (paged), show, declare (PUT), delete.
#include <chrono>
#include <optional>
#include <set>

#include "http/api_call.h"
#include "http/api_stats.h"
#include "http/queue_walk.h"

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

// A page in name order (the default sort): the walk builds only the page's items, and without
// a name filter stops at the page's end, so a page of 100 out of 100,000 queues sorts nothing
// and builds 100 items.
void reply_page_by_name(ApiCall& c, QueueWalk walk, NameFilter filter, const SampleRange& range) {
  int64_t page = 0, page_size = 0;
  if (!read_paging(c.target, &page, &page_size, c.r)) return;
  struct State {
    QueueWalk walk;
    NameFilter filter;
    size_t from, end;
    size_t matched = 0;
    json::array items;
  };
  size_t from = static_cast<size_t>(page - 1) * static_cast<size_t>(page_size);
  auto st = std::make_shared<State>(
      State{std::move(walk), std::move(filter), from, from + static_cast<size_t>(page_size)});
  std::vector<std::string> vhosts;
  for (const std::string& v : c.broker.list_vhosts())
    if ((c.seg().size() == 1 || v == c.seg()[1]) && c.visible(v)) vhosts.push_back(v);
  broker::Broker& broker = c.broker;
  reply_later(
      c,
      [st, &broker, node = c.info.node_name, range](Deadline deadline) {
        return st->walk.step(broker, deadline, [&](const broker::VHost& vh, const broker::Queue& q) {
          if (!st->filter.matches(q.name())) return true;
          size_t i = st->matched++;
          if (i >= st->from && i < st->end) st->items.push_back(queue_json(q, vh, node, range));
          return !st->filter.empty() || st->matched < st->end;
        });
      },
      [st, &broker, vhosts = std::move(vhosts), target = c.target, page,
       page_size](Response& r) {
        size_t total = 0;
        for (const std::string& v : vhosts)
          if (const broker::VHost* vh = broker.find_vhost(v)) total += vh->queues().size();
        size_t filtered = st->filter.empty() ? total : st->matched;
        reply_page(target, page, page_size, filtered, total, [&](size_t i) -> json::value {
          size_t k = i - st->from;
          return k < st->items.size() ? std::move(st->items[k]) : json::value(nullptr);
        }, r);
      });
}

// The whole list in name order: each item is serialised as it is built, so no tree of 100,000
// objects is ever held and nothing is left to sort.
void reply_all_by_name(ApiCall& c, QueueWalk walk, NameFilter filter, const SampleRange& range,
                       size_t expected) {
  struct State {
    QueueWalk walk;
    NameFilter filter;
    std::optional<Columns> columns;
    std::string body = "[";
  };
  auto st = std::make_shared<State>(State{std::move(walk), std::move(filter), std::nullopt});
  if (auto columns = c.target.param("columns"); columns && !columns->empty())
    st->columns = parse_columns(*columns);
  st->body.reserve(expected * 460);  // about one queue's JSON
  broker::Broker& broker = c.broker;
  reply_later(
      c,
      [st, &broker, node = c.info.node_name, range](Deadline deadline) {
        return st->walk.step(broker, deadline, [&](const broker::VHost& vh, const broker::Queue& q) {
          if (!st->filter.matches(q.name())) return true;
          json::value v = queue_json(q, vh, node, range);
          if (st->columns) keep_columns(*st->columns, v);
          if (st->body.size() > 1) st->body += ',';
          st->body += json::serialize(v);
          return true;
        });
      },
      [st](Response& r) {
        st->body += ']';
        reply_json_text(r, bhttp::status::ok, std::move(st->body));
      });
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
      auto filter = name_filter(c.target, r);
      if (!filter) return;
      size_t expected = 0;
      for (const std::string& v : vhosts) expected += c.broker.find_vhost(v)->queues().size();
      if (c.target.param("sort").value_or("name") == "name") {
        QueueWalk walk(std::move(vhosts), c.target.flag("sort_reverse"));
        if (c.target.param("page"))
          return reply_page_by_name(c, std::move(walk), std::move(*filter), range);
        return reply_all_by_name(c, std::move(walk), std::move(*filter), range, expected);
      }
      // Sorted by another field: every matching item is built, then reply_list sorts, pages and
      // serialises them on the worker.
      reply_list_later(c, [walk = QueueWalk(std::move(vhosts), false), &broker = c.broker, node,
                           range, filter = std::move(*filter)](ListOut& out,
                                                               Deadline deadline) mutable {
        return walk.step(broker, deadline, [&](const broker::VHost& vh, const broker::Queue& q) {
          if (filter.matches(q.name()))
            out.items.push_back(queue_json(q, vh, node, range));
          else
            ++out.left_out;
          return true;
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
