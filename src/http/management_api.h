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
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "broker/broker.h"
#include "http/http_server.h"

namespace warren::http {

// A bound listener, as RabbitMQ lists it (overview, health checks by port and protocol).
struct ListenerInfo {
  std::string protocol;  // amqp, amqp/ssl, http, http/prometheus
  std::string ip_address;
  uint16_t port = 0;
  std::string certfile, cacertfile;  // TLS listeners (certificate-expiration health check)
};

struct ManagementInfo {
  std::string node_name;  // warren@<hostname>
  std::string product_version;
  uint16_t amqp_port = 0;
  uint16_t management_port = 0;
  std::vector<ListenerInfo> listeners;  // known once every listener is bound
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Runs on the broker's event loop; long replies (lists of 100,000 queues, definitions) are built
// a slice per loop turn and parsed or serialised on one worker thread of its own.
class ManagementApi {
 public:
  ManagementApi(boost::asio::io_context& io, broker::Broker& broker, ManagementInfo info)
      : io_(io), broker_(broker), info_(std::move(info)) {}
  ~ManagementApi() { worker_.join(); }
  void handle(const Request& request, const Peer& peer, Response& response, Responder& responder);
  ManagementInfo& info() { return info_; }  // ports known once the listeners are bound

 private:
  boost::asio::io_context& io_;
  broker::Broker& broker_;
  ManagementInfo info_;
  boost::asio::thread_pool worker_{1};
};

}  // namespace warren::http
