#include "server/plugin_endpoints.h"

#include <spdlog/spdlog.h>

#include "mqtt/connection.h"
#include "net/tcp_byte_stream.h"
#include "net/tls_byte_stream.h"
#include "net/websocket_byte_stream.h"
#include "stomp/connection.h"

namespace warren::server {

namespace {

using Socket = boost::asio::ip::tcp::socket;

std::vector<ListenAddress> on_port(const std::vector<ListenAddress>& addresses, uint16_t port) {
  std::vector<ListenAddress> out;
  for (const ListenAddress& l : addresses) out.push_back({l.address, port});
  return out;
}

// Closes the connections whose protocol starts with `prefix` ("MQTT ", "Web STOMP "), as
// RabbitMQ does for a plugin it stops.
void close_connections(broker::Broker& broker, std::string_view prefix) {
  std::vector<std::shared_ptr<broker::ClientConnection>> matching;
  for (const auto& [raw, c] : broker.connections())
    if (c->info().protocol.starts_with(prefix)) matching.push_back(c);
  for (const auto& c : matching) c->force_close("plugin disabled");
}

}  // namespace

void register_plugin_endpoints(PluginListeners& listeners, PluginEndpoints& ep,
                               boost::asio::io_context& io, broker::Broker& broker,
                               const Config& config, net::TlsContext* tls,
                               const http::Handler& management, const http::Handler& prometheus) {
  const std::set<std::string>& forced = config.forced_plugins;
  auto mqtt_service = [&ep, &broker, &config](std::string* error) {
    if (ep.mqtt_service) return true;
    auto retained = mqtt::RetainedStore::open(config.data_dir);
    if (!retained) {
      *error = "MQTT retained message store: " + retained.error();
      return false;
    }
    ep.mqtt_service = std::make_unique<mqtt::Service>(broker, config.mqtt, std::move(*retained));
    return true;
  };
  auto http = [&io, &config](HttpListeners& l, uint16_t port, const http::Handler& handler,
                             std::string* error) {
    if (!l.open(io, config.amqp_listeners, port, handler, error)) return false;
    l.start();
    return true;
  };
  listeners.add({"rabbitmq_management", "management HTTP API",
                 forced.count("rabbitmq_management") > 0,
                 [&ep, &config, &management, http](std::string* error) {
                   return http(ep.management, config.management_port, management, error);
                 },
                 [&ep] { ep.management.stop(); }, [] {},
                 [&ep] { return ep.management.describe(); }});
  listeners.add({"rabbitmq_prometheus", "Prometheus metrics",
                 forced.count("rabbitmq_prometheus") > 0,
                 [&ep, &config, &prometheus, http](std::string* error) {
                   return http(ep.prometheus, config.prometheus_port, prometheus, error);
                 },
                 [&ep] { ep.prometheus.stop(); }, [] {},
                 [&ep] { return ep.prometheus.describe(); }});
  listeners.add(
      {"rabbitmq_mqtt", "MQTT", forced.count("rabbitmq_mqtt") > 0,
       [&ep, &io, &config, mqtt_service](std::string* error) {
         if (!mqtt_service(error)) return false;
         mqtt::Service& service = *ep.mqtt_service;
         if (!ep.mqtt.open(
                 io, config.mqtt_listeners,
                 [&service](Socket s) {
                   std::make_shared<mqtt::Connection>(
                       std::make_unique<net::TcpByteStream>(std::move(s)), service)
                       ->start();
                 },
                 error))
           return false;
         ep.mqtt.start();
         return true;
       },
       [&ep] { ep.mqtt.stop(); },
       [&broker] { close_connections(broker, "MQTT "); },
       [&ep] { return ep.mqtt.describe(); }});
  // mqtts and stomps: only where mqtt.listeners.ssl / stomp.listeners.ssl (or --mqtts-port /
  // --stomps-port) say, with ssl_options' certificate.
  if (tls != nullptr && !config.mqtt_tls_listeners.empty())
    listeners.add(
        {"rabbitmq_mqtt", "MQTTS", forced.count("rabbitmq_mqtt/ssl") > 0,
         [&ep, &io, &config, tls, mqtt_service](std::string* error) {
           if (!mqtt_service(error)) return false;
           mqtt::Service& service = *ep.mqtt_service;
           if (!ep.mqtts.open(
                   io, config.mqtt_tls_listeners,
                   [&service, tls](Socket s) {
                     net::TlsByteStream::accept(
                         std::move(s), *tls, [&service](std::unique_ptr<net::TlsByteStream> t) {
                           std::make_shared<mqtt::Connection>(std::move(t), service)->start();
                         });
                   },
                   error))
             return false;
           ep.mqtts.start();
           return true;
         },
         [&ep] { ep.mqtts.stop(); }, [] {}, [&ep] { return ep.mqtts.describe(); }});
  if (tls != nullptr && !config.stomp.tls_listeners.empty())
    listeners.add(
        {"rabbitmq_stomp", "STOMPS", forced.count("rabbitmq_stomp/ssl") > 0,
         [&ep, &io, &broker, &config, tls](std::string* error) {
           if (!ep.stomps.open(
                   io, config.stomp.tls_listeners,
                   [&broker, &config, tls](Socket s) {
                     net::TlsByteStream::accept(
                         std::move(s), *tls,
                         [&broker, &config](std::unique_ptr<net::TlsByteStream> t) {
                           std::make_shared<stomp::Connection>(std::move(t), broker,
                                                               config.stomp.settings)
                               ->start();
                         });
                   },
                   error))
             return false;
           ep.stomps.start();
           return true;
         },
         [&ep] { ep.stomps.stop(); }, [] {}, [&ep] { return ep.stomps.describe(); }});
  listeners.add(
      {"rabbitmq_web_mqtt", "web MQTT", forced.count("rabbitmq_web_mqtt") > 0,
       [&ep, &io, &config, mqtt_service](std::string* error) {
         if (!mqtt_service(error)) return false;
         mqtt::Service& service = *ep.mqtt_service;
         const std::string& path = config.web_mqtt_path;
         if (!ep.web_mqtt.open(
                 io, on_port(config.amqp_listeners, config.web_mqtt_port),
                 [&service, &path](Socket s) {
                   net::WebSocketByteStream::accept(
                       std::move(s), path, {"mqtt", "mqttv3.1"}, true,
                       [&service](std::unique_ptr<net::WebSocketByteStream> ws) {
                         std::make_shared<mqtt::Connection>(std::move(ws), service)->start();
                       },
                       /*any_subprotocol=*/true);
                 },
                 error))
           return false;
         ep.web_mqtt.start();
         return true;
       },
       [&ep] { ep.web_mqtt.stop(); },
       [&broker] { close_connections(broker, "Web MQTT "); },
       [&ep] { return ep.web_mqtt.describe(); }});
  listeners.add(
      {"rabbitmq_stomp", "STOMP", forced.count("rabbitmq_stomp") > 0,
       [&ep, &io, &broker, &config](std::string* error) {
         if (!ep.stomp.open(
                 io, config.stomp.listeners,
                 [&broker, &config](Socket s) {
                   std::make_shared<stomp::Connection>(
                       std::make_unique<net::TcpByteStream>(std::move(s)), broker,
                       config.stomp.settings)
                       ->start();
                 },
                 error))
           return false;
         ep.stomp.start();
         return true;
       },
       [&ep] { ep.stomp.stop(); },
       [&broker] { close_connections(broker, "STOMP "); },
       [&ep] { return ep.stomp.describe(); }});
  listeners.add(
      {"rabbitmq_web_stomp", "web STOMP", forced.count("rabbitmq_web_stomp") > 0,
       [&ep, &io, &broker, &config](std::string* error) {
         if (!ep.web_stomp.open(
                 io, on_port(config.amqp_listeners, config.stomp.web_port),
                 [&broker, &config](Socket s) {
                   net::WebSocketByteStream::accept(
                       std::move(s), config.stomp.web_path,
                       {"v12.stomp", "v11.stomp", "v10.stomp"}, config.stomp.web_binary,
                       [&broker, &config](std::unique_ptr<net::WebSocketByteStream> ws) {
                         std::make_shared<stomp::Connection>(std::move(ws), broker,
                                                             config.stomp.settings)
                             ->start();
                       });
                 },
                 error))
           return false;
         ep.web_stomp.start();
         return true;
       },
       [&ep] { ep.web_stomp.stop(); },
       [&broker] { close_connections(broker, "Web STOMP "); },
       [&ep] { return ep.web_stomp.describe(); }});
}

}  // namespace warren::server
