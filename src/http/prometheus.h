// Prometheus metrics in the text exposition format, with rabbitmq_prometheus's metric names
// (RabbitMQ 3.10): GET /metrics aggregates queue metrics over all queues, as RabbitMQ does by
// default; GET /metrics/per-object labels them with vhost and queue. Served on
// --prometheus-port (15692). No authentication, as RabbitMQ's endpoint. The totals come from the
// vhosts' running queue totals; the per-object rows are built a slice of queues per event-loop
// turn (queue_walk.h), so neither pauses the message path at 100,000 queues.
#pragma once

#include <memory>
#include <string>

#include "broker/broker.h"
#include "http/http_server.h"

namespace warren::http {

class PrometheusEndpoint {
 public:
  PrometheusEndpoint(broker::Broker& broker, std::string node_name)
      : broker_(broker), node_(std::move(node_name)) {}
  void handle(const Request& request, const Peer& peer, Response& response,
              Responder& responder);

 private:
  struct QueueRows;
  // Everything, with the per-queue rows when given (else the queue metrics' totals).
  std::string render(const QueueRows* rows);
  static void add_rows(QueueRows& rows, const broker::VHost& vh, const broker::Queue& q);
  void add_rows_later(std::unique_ptr<QueueRows> rows, Finish finish);
  static void reply(Response& r, std::string body);
  broker::Broker& broker_;
  std::string node_;
};

}  // namespace warren::http
