#include "http/prometheus.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "broker/queue.h"
#include "http/queue_walk.h"

namespace warren::http {

namespace bhttp = boost::beast::http;

namespace {

// Label values escape backslash, double quote and newline.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# TYPE {} {}\n# HELP {} {}\n", name, type, name, help);
}

void metric(std::string& out, std::string_view name, std::string_view type,
            std::string_view help, uint64_t value, std::string_view labels = "") {
  header(out, name, type, help);
  fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels, value);
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

// The per-queue rows of /metrics/per-object, one string per queue metric, filled a slice of
// queues per event-loop turn.
struct PrometheusEndpoint::QueueRows {
  QueueWalk walk;
  std::string ready, unacked, consumers, bytes;
};

void PrometheusEndpoint::add_rows(QueueRows& rows, const broker::VHost& vh,
                                  const broker::Queue& q) {
  std::string labels = fmt::format("{{vhost=\"{}\",queue=\"{}\"}}", label(vh.name()),
                                   label(q.name()));
  auto row = [&](std::string& out, std::string_view name, uint64_t value) {
    fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, labels, value);
  };
  row(rows.ready, "rabbitmq_queue_messages_ready", q.message_count());
  row(rows.unacked, "rabbitmq_queue_messages_unacked", q.unacked_count());
  row(rows.consumers, "rabbitmq_queue_consumers", q.consumer_count());
  row(rows.bytes, "rabbitmq_queue_messages_bytes", q.message_bytes());
}

std::string PrometheusEndpoint::render(const QueueRows* rows) {
  std::string out;
  out.reserve(4096 + (rows != nullptr ? rows->ready.size() * 4 : 0));
  // The totals are the vhosts' running sums; only the per-object rows walk the queues.
  uint64_t ready = 0, unacked = 0, consumers = 0, bytes = 0, queues = 0;
  for (const std::string& vhost : broker_.list_vhosts()) {
    const broker::VHost* vh = broker_.find_vhost(vhost);
    const broker::QueueTotals& t = vh->queue_totals();
    queues += vh->queues().size();
    ready += static_cast<uint64_t>(t.ready);
    unacked += static_cast<uint64_t>(t.unacked);
    consumers += static_cast<uint64_t>(t.consumers);
    bytes += static_cast<uint64_t>(t.ready_bytes);
  }
  uint64_t connections = 0, channels = 0;
  for (const auto& [key, c] : broker_.connections()) {
    ++connections;
    channels += c->channel_count();
  }
  auto queue_metric = [&](std::string_view name, std::string_view help, uint64_t total,
                          std::string QueueRows::*per_queue) {
    header(out, name, "gauge", help);
    if (rows == nullptr)
      fmt::format_to(std::back_inserter(out), "{} {}\n", name, total);
    else
      out += rows->*per_queue;
  };
  queue_metric("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers",
               ready, &QueueRows::ready);
  queue_metric("rabbitmq_queue_messages_unacked",
               "Messages delivered to consumers but not yet acknowledged", unacked,
               &QueueRows::unacked);
  queue_metric("rabbitmq_queue_consumers", "Consumers on a queue", consumers,
               &QueueRows::consumers);
  queue_metric("rabbitmq_queue_messages_bytes", "Size in bytes of ready messages", bytes,
               &QueueRows::bytes);
  metric(out, "rabbitmq_queues", "gauge", "Queues available", queues);
  metric(out, "rabbitmq_consumers", "gauge", "Consumers currently connected", consumers);
  metric(out, "rabbitmq_connections", "gauge", "Connections currently open", connections);
  metric(out, "rabbitmq_channels", "gauge", "Channels currently open", channels);
  const broker::MessageStats& n = broker_.client_publishes();
  constexpr std::string_view kAmqp = "{protocol=\"amqp091\"}";
  metric(out, "rabbitmq_global_messages_received_total", "counter",
         "Total number of messages received from publishers", n.publish, kAmqp);
  metric(out, "rabbitmq_global_messages_routed_total", "counter",
         "Total number of messages routed to queues or streams",
         n.publish - n.drop_unroutable - n.return_unroutable, kAmqp);
  metric(out, "rabbitmq_global_messages_unroutable_dropped_total", "counter",
         "Total number of messages published as non-mandatory into an exchange and dropped as "
         "unroutable",
         n.drop_unroutable, kAmqp);
  metric(out, "rabbitmq_global_messages_unroutable_returned_total", "counter",
         "Total number of messages published as mandatory into an exchange and returned to the "
         "publisher as unroutable",
         n.return_unroutable, kAmqp);
  metric(out, "rabbitmq_process_resident_memory_bytes", "gauge", "Memory used in bytes",
         resident_bytes());
  metric(out, "rabbitmq_resident_memory_limit_bytes", "gauge",
         "Memory high watermark in bytes", broker_.limits().memory_high_watermark);
  metric(out, "rabbitmq_alarms_memory_used_watermark", "gauge",
         "is set to 1 if the memory alarm is in effect", broker_.memory_alarm() ? 1 : 0);
  metric(out, "rabbitmq_alarms_free_disk_space_watermark", "gauge",
         "is set to 1 if the disk alarm is in effect", broker_.disk_alarm() ? 1 : 0);
  header(out, "rabbitmq_identity_info", "untyped", "RabbitMQ node & cluster identity info");
  fmt::format_to(std::back_inserter(out),
                 "rabbitmq_identity_info{{rabbitmq_node=\"{}\",rabbitmq_cluster=\"{}\"}} 1\n",
                 label(node_), label(node_));
  return out;
}

void PrometheusEndpoint::handle(const Request& req, const Peer&, Response& r,
                                Responder& responder) {
  std::string_view target = req.target();
  target = target.substr(0, target.find('?'));
  bool known = target == "/metrics" || target == "/metrics/per-object";
  if (req.method() != bhttp::verb::get || !known) {
    r.result(bhttp::status::not_found);
    r.set(bhttp::field::content_type, "text/plain");
    r.body() = "Not Found\n";
    return;
  }
  if (target == "/metrics") return reply(r, render(nullptr));
  // Per object: a row per queue and metric, 100,000 queues or more; built a slice per turn.
  auto rows = std::make_unique<QueueRows>(QueueRows{QueueWalk(broker_.list_vhosts(), false)});
  add_rows_later(std::move(rows), responder.later());
}

void PrometheusEndpoint::reply(Response& r, std::string body) {
  r.result(bhttp::status::ok);
  r.set(bhttp::field::content_type, "text/plain; version=0.0.4");
  r.body() = std::move(body);
}

void PrometheusEndpoint::add_rows_later(std::unique_ptr<QueueRows> rows, Finish finish) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  bool done = rows->walk.step(broker_, deadline,
                              [&](const broker::VHost& vh, const broker::Queue& q) {
                                add_rows(*rows, vh, q);
                                return true;
                              });
  if (!done) {
    boost::asio::post(broker_.io(), [this, rows = std::move(rows),
                                     finish = std::move(finish)]() mutable {
      add_rows_later(std::move(rows), std::move(finish));
    });
    return;
  }
  Response r;
  reply(r, render(rows.get()));
  rows.reset();
  finish(std::move(r));
}

}  // namespace warren::http
