// The endpoints of Warren's plugins, registered with PluginListeners: the management API and
// Prometheus (HTTP), MQTT and STOMP (TCP), and MQTT and STOMP over WebSocket. Each opens on the
// AMQP listeners' addresses (MQTT and STOMP: their own configured listeners) and, when its
// plugin is disabled, stops listening and closes its protocol's connections.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "broker/broker.h"
#include "http/http_server.h"
#include "mqtt/service.h"
#include "net/tls_context.h"
#include "server/config.h"
#include "server/http_listeners.h"
#include "server/plugin_listeners.h"
#include "server/tcp_listeners.h"

namespace warren::server {

struct PluginEndpoints {
  TcpListeners mqtt{"MQTT"}, web_mqtt{"web MQTT"}, stomp{"STOMP"}, web_stomp{"web STOMP"};
  TcpListeners mqtts{"MQTTS"}, stomps{"STOMPS"};
  HttpListeners management, prometheus;
  std::unique_ptr<mqtt::Service> mqtt_service;  // made when MQTT first opens
};

// The handlers of the HTTP endpoints are the caller's (they outlive the listeners). tls: the
// listeners' TLS settings, for mqtts and stomps (null: none configured).
void register_plugin_endpoints(PluginListeners& listeners, PluginEndpoints& endpoints,
                               boost::asio::io_context& io, broker::Broker& broker,
                               const Config& config, net::TlsContext* tls,
                               const http::Handler& management, const http::Handler& prometheus);

}  // namespace warren::server
