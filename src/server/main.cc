// warren-server: parses configuration, opens the data directory, starts the AMQP listener and runs
// the broker's event loop until SIGINT/SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
#include <cstdlib>
#include <memory>
#include <functional>
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "http/http_server.h"
#include "http/management_api.h"
#include "http/static_files.h"
#include "http/prometheus.h"
#include "common/plugins.h"
#include "amqp/connection.h"
#include "server/tcp_listeners.h"
#include "server/config.h"
#include "server/http_listeners.h"
#include "server/plugin_endpoints.h"
#include "server/plugin_listeners.h"
#include "server/logging.h"
#include "server/control_server.h"
#include "server/data_dir.h"
#include "store/metadata_store.h"
#include "store/sync_gate_io.h"

int main(int argc, char** argv) {
  using namespace warren;
  int exit_code = 0;
  auto config = server::parse_config(argc, argv, &exit_code);
  if (!config) return exit_code;
  std::string error;
  if (!server::set_up_logging(*config, &error)) {
    std::fprintf(stderr, "warren-server: %s\n", error.c_str());
    return 1;
  }
  if (!config->config_file.empty()) spdlog::info("config file {}", config->config_file);

  server::DataDirLock lock;
  if (!lock.acquire(config->data_dir, &error)) {
    spdlog::critical("{}", error);
    return 1;
  }

  auto metadata = store::MetadataStore::open(config->data_dir);
  if (!metadata) {
    spdlog::critical("cannot open the metadata store: {}", metadata.error().message);
    return 1;
  }
  auto definitions = metadata->load();
  if (!definitions) {
    spdlog::critical("cannot read the metadata store: {}", definitions.error().message);
    return 1;
  }

  // Test hook (tests/integration/test_sync_promises.py): hold every journal fdatasync while the
  // named file exists. Never set in production; the warning makes a stray setting visible.
  // Declared before the broker, whose journal uses it until the broker is destroyed.
  std::unique_ptr<store::SyncGateIo> sync_gate;
  if (const char* gate = std::getenv("WARREN_TEST_SYNC_GATE"); gate != nullptr && *gate != 0) {
    spdlog::warn("test hook WARREN_TEST_SYNC_GATE is set: journal syncs wait while {} exists",
                 gate);
    sync_gate = std::make_unique<store::SyncGateIo>(gate);
  }
  boost::asio::io_context io(1);  // one thread, no internal locking
  broker::Broker broker(io, config->limits, auth::UserStore{}, &*metadata);
  broker.users().set_loopback_users(config->loopback_users);
  broker.set_node_name(server::node_name());  // the firehose's "node" header
  // Users, vhosts (each with its definitions) and permissions; the default user on first start.
  if (broker::Status s = broker.restore_access(*definitions, config->default_access)) {
    spdlog::critical("cannot restore users and vhosts: {}", s->text);
    return 1;
  }
  if (broker::Status s = broker.restore_global_parameters()) {
    spdlog::critical("cannot restore global parameters: {}", s->text);
    return 1;
  }
  store::MessageStoreOptions journal_options;
  journal_options.dir = config->data_dir;
  if (config->segment_size != 0) journal_options.segment_size = config->segment_size;
  if (sync_gate) journal_options.io = sync_gate.get();
  if (std::error_code ec = broker.open_journal(journal_options, nullptr)) {
    spdlog::critical("cannot open the message store in {}: {}", config->data_dir, ec.message());
    return 1;
  }

  broker.watch_disk(config->data_dir);
  broker.start_stats_sampling(config->collect_statistics_interval_ms);

  // Signal handling is in place before the listening port is logged: a supervisor (or a test)
  // that sends SIGTERM as soon as it sees the port gets a clean stop, not the default death. A
  // signal that arrives before the handler below is waited for is queued by Asio.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);

  server::TcpListeners listeners("AMQP");
  if (!listeners.open(
          io, config->amqp_listeners,
          [&broker](boost::asio::ip::tcp::socket s) {
            std::make_shared<amqp::Connection>(std::move(s), broker)->start();
          },
          &error)) {
    spdlog::critical("{}", error);
    return 1;
  }
  listeners.start();
  // TLS (ssl_options.*): for amqps on the AMQP addresses, and for mqtts and stomps.
  std::unique_ptr<net::TlsContext> tls;
  server::TcpListeners tls_listeners("AMQPS");
  if (!config->tls.certfile.empty() || config->tls.port) {
    net::TlsOptions options;
    options.certfile = config->tls.certfile;
    options.keyfile = config->tls.keyfile;
    options.cacertfile = config->tls.cacertfile;
    options.verify_peer = config->tls.verify == "verify_peer";
    options.fail_if_no_peer_cert = config->tls.fail_if_no_peer_cert;
    options.handshake_timeout = std::chrono::milliseconds(config->tls.handshake_timeout_ms);
    tls = net::TlsContext::create(options, &error);
    if (!tls) {
      spdlog::critical("{}", error);
      return 1;
    }
  }
  if (config->tls.port) {
    std::vector<server::ListenAddress> addresses;
    for (const server::ListenAddress& l : config->amqp_listeners)
      addresses.push_back({l.address, *config->tls.port});
    if (!tls_listeners.open(
            io, addresses,
            [&broker, &tls](boost::asio::ip::tcp::socket s) {
              std::make_shared<amqp::Connection>(std::move(s), broker, tls.get())->start();
            },
            &error)) {
      spdlog::critical("{}", error);
      return 1;
    }
    tls_listeners.start();
  }
  if (!tls && (!config->mqtt_tls_listeners.empty() || !config->stomp.tls_listeners.empty())) {
    spdlog::critical("mqtt.listeners.ssl / stomp.listeners.ssl need ssl_options.certfile and "
                     "ssl_options.keyfile");
    return 1;
  }
  // The management HTTP API and web UI, Prometheus, MQTT, STOMP and their WebSocket variants:
  // switched on by DATA_DIR/enabled_plugins (warren-plugins), or forced by their port flags.
  http::ManagementInfo management_info{server::node_name(), "0.1.0", 0, 0};
  auto first_amqp = listeners.describe();
  if (!first_amqp.empty())
    management_info.amqp_port = static_cast<uint16_t>(
        std::stoi(first_amqp.front().substr(first_amqp.front().rfind(':') + 1)));
  http::ManagementApi management(io, broker, management_info);
  http::StaticFiles web_ui(config->management_www);
  http::PrometheusEndpoint prometheus(broker, server::node_name());
  const http::Handler management_handler = [&management, &web_ui](
                                               const http::Request& req, const http::Peer& peer,
                                               http::Response& res,
                                               http::Responder& responder) {
    // /api/... is the HTTP API; everything else the web UI's files.
    if (req.target().starts_with("/api/") || req.target() == "/api")
      management.handle(req, peer, res, responder);
    else
      web_ui.handle(req, res);
  };
  const http::Handler prometheus_handler = [&prometheus](const http::Request& req,
                                                         const http::Peer& peer,
                                                         http::Response& res,
                                                         http::Responder& responder) {
    prometheus.handle(req, peer, res, responder);
  };
  server::PluginEndpoints endpoints;
  server::PluginListeners plugin_listeners;
  server::register_plugin_endpoints(plugin_listeners, endpoints, io, broker, *config, tls.get(),
                                    management_handler, prometheus_handler);
  // What /api/overview and the health checks list as this node's listeners, rebuilt whenever
  // plugins change.
  plugin_listeners.set_on_change([&] {
    auto& list = management.info().listeners;
    list.clear();
    auto add = [&list](const std::vector<std::string>& bound, const std::string& protocol,
                       const std::string& certfile, const std::string& cacertfile) {
      for (const std::string& where : bound) {
        size_t colon = where.rfind(':');
        list.push_back({protocol, where.substr(0, colon),
                        static_cast<uint16_t>(std::stoi(where.substr(colon + 1))), certfile,
                        cacertfile});
      }
    };
    add(listeners.describe(), "amqp", "", "");
    add(tls_listeners.describe(), "amqp/ssl", config->tls.certfile, config->tls.cacertfile);
    add(endpoints.mqtt.describe(), "mqtt", "", "");
    add(endpoints.mqtts.describe(), "mqtt/ssl", config->tls.certfile, config->tls.cacertfile);
    add(endpoints.web_mqtt.describe(), "http/web-mqtt", "", "");
    add(endpoints.stomp.describe(), "stomp", "", "");
    add(endpoints.stomps.describe(), "stomp/ssl", config->tls.certfile, config->tls.cacertfile);
    add(endpoints.web_stomp.describe(), "http/web-stomp", "", "");
    add(endpoints.management.describe(), "http", "", "");
    add(endpoints.prometheus.describe(), "http/prometheus", "", "");
    management.info().management_port = endpoints.management.port();
  });
  {
    auto enabled = plugins::read_enabled(config->data_dir, &error);
    if (!enabled) {
      spdlog::critical("{}", error);
      return 1;
    }
    std::vector<std::string> started, stopped;
    if (!plugin_listeners.apply(plugins::expand(*enabled), &started, &stopped, &error, false)) {
      spdlog::critical("{}", error);
      return 1;
    }
  }
  // warrenctl's control socket (DATA_DIR/warren.sock, 0600).
  server::ControlServer control(broker, config->data_dir);
  control.set_plugins(&plugin_listeners);
  if (!control.start(&error)) {
    spdlog::critical("{}", error);
    return 1;
  }
  spdlog::info("Warren {} starting, data directory {}", "0.1.0", config->data_dir);
  // Tests and scripts read the first of these lines to find the port.
  for (const std::string& where : listeners.describe()) spdlog::info("AMQP listening on {}", where);
  for (const std::string& where : tls_listeners.describe())
    spdlog::info("AMQPS listening on {}", where);
  plugin_listeners.log_listening();

  // On SIGINT/SIGTERM: stop accepting, close every client with 320 CONNECTION_FORCED (as
  // RabbitMQ does on shutdown), give the close frames up to 3 s to go out, then stop.
  boost::asio::steady_timer shutdown_timer(io);
  auto deadline = std::chrono::steady_clock::now();
  std::function<void()> wait_for_clients = [&] {
    if (broker.connection_count() == 0 || std::chrono::steady_clock::now() > deadline) {
      io.stop();
      return;
    }
    shutdown_timer.expires_after(std::chrono::milliseconds(20));
    shutdown_timer.async_wait([&](boost::system::error_code) { wait_for_clients(); });
  };
  signals.async_wait([&](boost::system::error_code, int sig) {
    spdlog::info("signal {} received, stopping", sig);
    listeners.stop();
    tls_listeners.stop();
    plugin_listeners.stop_all();
    broker.close_all_connections("shutdown");
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    wait_for_clients();
  });
  io.run();
  broker.close_journal();
  spdlog::info("stopped");
  return 0;
}
