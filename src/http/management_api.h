// RabbitMQ's management HTTP API (https://www.rabbitmq.com/management.html#http-api) over the
// broker: basic authentication against the broker's users, access by user tag as RabbitMQ
// decides it, JSON in and out with RabbitMQ's field names, errors as
// {"error": ..., "reason": ...} with its status codes.
//
// The handlers live in one file per resource (api_*.cc, declared in api_call.h). Served so far:
// /api/overview, /api/whoami, /api/vhosts[/name] (GET, PUT, DELETE),
// /api/users[/name] (GET, PUT, DELETE), /api/queues[/vhost[/name]] (GET with pagination,
// PUT, DELETE), /api/exchanges, /api/bindings, /api/permissions, /api/policies,
// /api/aliveness-test/vhost, /api/health/checks/alarms.
#pragma once

#include <chrono>
#include <string>

#include "broker/broker.h"
#include "http/http_server.h"

namespace warren::http {

struct ManagementInfo {
  std::string node_name;  // warren@<hostname>
  std::string product_version;
  uint16_t amqp_port = 0;
  uint16_t management_port = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

class ManagementApi {
 public:
  ManagementApi(broker::Broker& broker, ManagementInfo info)
      : broker_(broker), info_(std::move(info)) {}
  void handle(const Request& request, const Peer& peer, Response& response);
  ManagementInfo& info() { return info_; }  // ports known once the listeners are bound

 private:
  broker::Broker& broker_;
  ManagementInfo info_;
};

}  // namespace warren::http
