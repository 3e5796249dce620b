// Prometheus metrics in the text exposition format, with rabbitmq_prometheus's metric names
// (RabbitMQ 3.10): GET /metrics aggregates queue metrics over all queues, as RabbitMQ does by
// default; GET /metrics/per-object labels them with vhost and queue. Served on
// --prometheus-port (15692). No authentication, as RabbitMQ's endpoint.
#pragma once

#include <string>

#include "broker/broker.h"
#include "http/http_server.h"

namespace warren::http {

class PrometheusEndpoint {
 public:
  PrometheusEndpoint(broker::Broker& broker, std::string node_name)
      : broker_(broker), node_(std::move(node_name)) {}
  void handle(const Request& request, const Peer& peer, Response& response);

 private:
  std::string render(bool per_object);
  broker::Broker& broker_;
  std::string node_;
};

}  // namespace warren::http
