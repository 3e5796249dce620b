// /api/overview, /api/whoami, /api/aliveness-test/{vhost}, /api/nodes, /api/extensions,
// /api/cluster-name.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "http/api_call.h"
#include "http/api_stats.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

size_t open_descriptors() {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

json::object node_json(ApiCall& c) {
  auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - c.info.started);
  return json::object{{"name", c.info.node_name},
                      {"type", "disc"},
                      {"running", true},
                      {"os_pid", std::to_string(::getpid())},
                      {"mem_used", resident_bytes()},
                      {"mem_limit", c.broker.limits().memory_high_watermark},
                      {"mem_alarm", c.broker.memory_alarm()},
                      {"disk_free_limit", c.broker.limits().disk_free_limit},
                      {"disk_free_alarm", c.broker.disk_alarm()},
                      {"fd_used", open_descriptors()},
                      {"sockets_used", c.broker.connection_count()},
                      {"uptime", uptime.count()},
                      {"processors", ::sysconf(_SC_NPROCESSORS_ONLN)}};
}

}  // namespace

void handle_overview(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& node = c.info.node_name;
  const std::string& what = seg[0];
  if (what == "nodes" && c.method() == bhttp::verb::get) {
    if (seg.size() == 1) return reply_json(r, bhttp::status::ok, json::array{node_json(c)});
    if (seg.size() == 2 && seg[1] == c.info.node_name)
      return reply_json(r, bhttp::status::ok, node_json(c));
    return not_found(r);
  }
  // The UI asks which plugin extensions to load: Warren has none.
  if (what == "extensions" && seg.size() == 1 && c.method() == bhttp::verb::get)
    return reply_json(r, bhttp::status::ok, json::array());
  if (what == "cluster-name" && seg.size() == 1 && c.method() == bhttp::verb::get)
    return reply_json(r, bhttp::status::ok, json::object{{"name", c.info.node_name}});
  if (what == "whoami" && seg.size() == 1 && c.method() == bhttp::verb::get)
    return reply_json(r, bhttp::status::ok,
                      json::object{{"name", c.user.name}, {"tags", tags_json(c.user)}});

  if (what == "overview" && seg.size() == 1 && c.method() == bhttp::verb::get) {
    size_t queues = 0, exchanges = 0, consumers = 0, ready = 0, unacked = 0, channels = 0;
    // Monitoring users see the broker-wide totals and their samples; a management user the sum
    // of its vhosts' counters and samples.
    broker::ObjectStats own_stats;
    for (const std::string& name : c.broker.list_vhosts()) {
      if (!c.visible(name)) continue;
      const broker::VHost* vh = c.broker.find_vhost(name);
      exchanges += vh->exchanges().size();
      queues += vh->queues().size();
      const broker::QueueTotals& t = vh->queue_totals();
      consumers += static_cast<size_t>(t.consumers);
      ready += static_cast<size_t>(t.ready);
      unacked += static_cast<size_t>(t.unacked);
      if (!c.monitoring) own_stats.add(vh->stats());
    }
    size_t connections = 0;
    for (const auto& [key, conn] : c.broker.connections()) {
      if (!c.monitoring && conn->user_name() != c.user.name) continue;
      ++connections;
      channels += conn->channel_count();
    }
    SampleRange range = SampleRange::of(c.target);
    const broker::StatsSampler* sampler = c.broker.stats_sampler();
    const broker::ObjectStats& totals =
        c.monitoring && sampler != nullptr ? sampler->totals() : own_stats;
    json::value message_stats = message_stats_json(totals, broker::StatsKind::kVHost, range);
    json::object queue_totals;
    add_lengths(queue_totals, totals, ready, unacked, range);
    json::array listeners;
    for (const ListenerInfo& l : c.info.listeners)
      listeners.push_back(json::object{{"node", node},
                                       {"protocol", l.protocol},
                                       {"ip_address", l.ip_address},
                                       {"port", l.port},
                                       {"socket_opts", json::object()}});
    return reply_json(
        r, bhttp::status::ok,
        json::object{{"management_version", c.info.product_version},
                     {"rates_mode", "basic"},
                     {"statistics_db_event_queue", 0},
                     {"sample_retention_policies",
                      json::object{{"global", json::array{600, 3600, 28800, 86400}},
                                   {"basic", json::array{600, 3600}},
                                   {"detailed", json::array{600}}}},
                     {"message_stats", message_stats.is_null() ? json::value(json::object())
                                                               : std::move(message_stats)},
                     {"product_name", "Warren"},
                     {"product_version", c.info.product_version},
                     {"rabbitmq_version", "3.10.8"},
                     {"cluster_name", node},
                     {"node", node},
                     {"disable_stats", false},
                     {"enable_queue_totals", false},
                     {"exchange_types",
                      json::array{
                          json::object{{"name", "direct"}, {"enabled", true}},
                          json::object{{"name", "fanout"}, {"enabled", true}},
                          json::object{{"name", "headers"}, {"enabled", true}},
                          json::object{{"name", "topic"}, {"enabled", true}},
                          json::object{{"name", "x-delayed-message"}, {"enabled", true}}}},
                     {"object_totals", json::object{{"channels", channels},
                                                    {"connections", connections},
                                                    {"consumers", consumers},
                                                    {"exchanges", exchanges},
                                                    {"queues", queues}}},
                     {"queue_totals", std::move(queue_totals)},
                     {"listeners", std::move(listeners)}});
  }

  if (what == "aliveness-test" && seg.size() == 2 && c.method() == bhttp::verb::get) {
    if (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])) return not_found(r);
    return reply_json(r, bhttp::status::ok, json::object{{"status", "ok"}});
  }

  not_found(r);
}

}  // namespace warren::http
