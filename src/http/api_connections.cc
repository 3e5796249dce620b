// /api/connections[/{name}] (list, show, DELETE closes it with 320 and the X-Reason header's
// text), /api/vhosts/{vhost}/connections, /api/channels, /api/consumers[/{vhost}].
// Management users see their own connections only (monitoring: all).
#include <algorithm>
#include <chrono>

#include "broker/field_table_json.h"
#include "broker/queue.h"
#include "http/api_call.h"
#include "http/api_stats.h"
#include "http/queue_walk.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

// RabbitMQ names a network connection "peer_host:peer_port -> host:port".
std::string connection_name(const broker::ConnectionInfo& c) {
  return c.peer_host + ":" + std::to_string(c.peer_port) + " -> " + c.host + ":" +
         std::to_string(c.port);
}

struct Conn {
  broker::ConnectionInfo info;
  std::shared_ptr<broker::ClientConnection> connection;
};

// The connections the user may see, as references (the long lists' snapshot).
std::vector<std::shared_ptr<broker::ClientConnection>> connection_refs(ApiCall& c) {
  std::vector<std::shared_ptr<broker::ClientConnection>> out;
  for (const auto& [key, conn] : c.broker.connections())
    if (c.monitoring || conn->user_name() == c.user.name) out.push_back(conn);
  return out;
}

std::vector<Conn> visible_connections(ApiCall& c) {
  std::vector<Conn> out;
  for (const auto& [key, conn] : c.broker.connections()) {
    broker::ConnectionInfo info = conn->info();
    if (info.id == 0) continue;
    if (!c.monitoring && info.user != c.user.name) continue;
    out.push_back({std::move(info), conn});
  }
  std::sort(out.begin(), out.end(), [](const Conn& a, const Conn& b) {
    return a.info.id < b.info.id;
  });
  return out;
}

json::object connection_json(const broker::ConnectionInfo& c, const std::string& node) {
  json::object props = c.client_properties ? to_json(*c.client_properties) : json::object();
  const broker::ConnectionTraffic& t = c.traffic;
  return json::object{{"name", connection_name(c)},
                      {"connected_at", c.connected_at_ms},
                      {"recv_oct", t.recv_oct},
                      {"recv_oct_details", json::object{{"rate", t.recv_oct_rate}}},
                      {"recv_cnt", t.recv_cnt},
                      {"send_oct", t.send_oct},
                      {"send_oct_details", json::object{{"rate", t.send_oct_rate}}},
                      {"send_cnt", t.send_cnt},
                      {"send_pend", 0},
                      {"node", node},
                      {"user", c.user},
                      {"vhost", c.vhost},
                      {"peer_host", c.peer_host},
                      {"peer_port", c.peer_port},
                      {"host", c.host},
                      {"port", c.port},
                      {"state", c.state},
                      {"channels", c.channels.size()},
                      {"channel_max", c.channel_max},
                      {"frame_max", c.frame_max},
                      {"timeout", c.heartbeat},
                      {"protocol", c.protocol},
                      {"type", "network"},
                      {"ssl", c.ssl},
                      {"auth_mechanism", c.auth_mechanism},
                      {"user_provided_name", c.client_name},
                      {"client_properties", std::move(props)}};
}

json::object channel_details(const broker::ConnectionInfo& c, uint16_t number) {
  return json::object{{"name", connection_name(c) + " (" + std::to_string(number) + ")"},
                      {"number", number},
                      {"connection_name", connection_name(c)},
                      {"peer_host", c.peer_host},
                      {"peer_port", c.peer_port},
                      {"user", c.user}};
}

// The channels of one connection, by number, as /api/channels lists them.
void add_channels(const broker::ConnectionInfo& conn, const std::string& node,
                  const SampleRange& range, json::array& items) {
  std::vector<broker::ChannelInfo> chans = conn.channels;
  std::sort(chans.begin(), chans.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  for (const broker::ChannelInfo& ch : chans) {
    json::object o = channel_details(conn, ch.number);
    o["node"] = node;
    o["vhost"] = conn.vhost;
    o["connection_details"] = json::object{{"name", connection_name(conn)},
                                           {"peer_host", conn.peer_host},
                                           {"peer_port", conn.peer_port}};
    o["state"] = "running";
    o["transactional"] = ch.transactional;
    o["confirm"] = ch.confirm;
    o["consumer_count"] = ch.consumer_count;
    o["messages_unacknowledged"] = ch.messages_unacknowledged;
    o["prefetch_count"] = ch.prefetch_count;
    o["global_prefetch_count"] = 0;
    if (ch.stats != nullptr) {
      json::value stats = message_stats_json(*ch.stats, broker::StatsKind::kChannel, range);
      if (!stats.is_null()) o["message_stats"] = std::move(stats);
    }
    items.push_back(std::move(o));
  }
}

}  // namespace

void handle_connections(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& node = c.info.node_name;
  if (seg[0] == "connections") {
    if (seg.size() == 1) {
      if (c.method() != bhttp::verb::get) return method_not_allowed(r);
      // 10,000s of connections: their infos are built a slice per loop turn from a snapshot of
      // references, then sorted on the worker.
      return reply_snapshot_later(c, connection_refs(c), [node](const auto& conn,
                                                                json::array& out) {
        broker::ConnectionInfo info = conn->info();
        if (info.id != 0) out.push_back(connection_json(info, node));
      });
    }
    if (seg.size() != 2) return not_found(r);
    for (const Conn& conn : visible_connections(c)) {
      if (connection_name(conn.info) != seg[1]) continue;
      if (c.method() == bhttp::verb::get)
        return reply_json(r, bhttp::status::ok, connection_json(conn.info, node));
      if (c.method() != bhttp::verb::delete_) return method_not_allowed(r);
      auto reason = c.req.find("X-Reason");
      conn.connection->close_by_operator(reason != c.req.end()
                                             ? std::string(reason->value())
                                             : std::string("Closed via management plugin"));
      return no_content(r);
    }
    return not_found(r);
  }
  if (seg[0] == "channels") {
    if (seg.size() != 1) return not_found(r);
    if (c.method() != bhttp::verb::get) return method_not_allowed(r);
    // A slice of connections per loop turn (from a snapshot of references), sorted on the
    // worker.
    return reply_snapshot_later(c, connection_refs(c), [node, range = SampleRange::of(c.target)](
                                                            const auto& conn, json::array& out) {
      broker::ConnectionInfo info = conn->info();
      if (info.id != 0) add_channels(info, node, range, out);
    });
  }
  // consumers[/{vhost}]
  if (seg.size() > 2) return not_found(r);
  if (c.method() != bhttp::verb::get) return method_not_allowed(r);
  if (seg.size() == 2 && (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])))
    return not_found(r);
  // The channel of each consumer, by its delivery sink.
  std::unordered_map<const void*, json::object> channels;
  for (const Conn& conn : visible_connections(c))
    for (const broker::ChannelInfo& ch : conn.info.channels)
      channels[ch.sink] = channel_details(conn.info, ch.number);
  // Every queue's consumers, a slice of queues per loop turn (100,000 queues), in queue name
  // order. A consumer whose channel opened after the snapshot above is left out.
  std::vector<std::string> vhosts;
  for (std::string& name : c.broker.list_vhosts())
    if ((seg.size() == 1 || name == seg[1]) && c.visible(name)) vhosts.push_back(std::move(name));
  reply_list_later(c, [walk = QueueWalk(std::move(vhosts), false), &broker = c.broker,
                       channels = std::move(channels)](ListOut& out, Deadline deadline) mutable {
    return walk.step(broker, deadline, [&](const broker::VHost& vh, const broker::Queue& q) {
      if (q.consumers().empty()) return true;
      const broker::Consumer* active = q.single_active_consumer();
      bool sac = q.settings().single_active_consumer;
      for (const broker::Consumer* consumer : q.consumers()) {
        auto ch = channels.find(static_cast<const void*>(consumer->sink));
        if (ch == channels.end()) continue;  // another user's channel
        bool is_active = !sac || consumer == active;
        out.items.push_back(json::object{
            {"consumer_tag", consumer->tag},
            {"queue", json::object{{"name", q.name()}, {"vhost", vh.name()}}},
            {"channel_details", ch->second},
            {"ack_required", !consumer->no_ack},
            {"prefetch_count", consumer->prefetch},
            {"exclusive", consumer->exclusive},
            {"active", is_active},
            {"activity_status", sac ? (is_active ? "single_active" : "waiting") : "up"},
            {"arguments", to_json(consumer->arguments)}});
      }
      return true;
    });
  });
}

}  // namespace warren::http
