// Server configuration: defaults, then environment variables, then a rabbitmq.conf file
// (--config FILE, or RABBITMQ_CONFIG_FILE), then command-line flags; each later source overrides
// the earlier ones key by key.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "mqtt/settings.h"
#include "stomp/settings.h"

namespace warren::server {

// One address and port to listen on ("0.0.0.0" / "::" = every interface).
struct ListenAddress {
  std::string address;
  uint16_t port = 0;
};

// The amqps listener (listeners.ssl.default, ssl_options.*).
struct TlsConfig {
  std::optional<uint16_t> port;
  std::string certfile, keyfile, cacertfile;
  std::string verify = "verify_none";
  bool fail_if_no_peer_cert = false;
  uint32_t handshake_timeout_ms = 5000;  // ssl_handshake_timeout
};

// The STOMP listeners (rabbitmq_stomp): where they listen once the plugin is enabled (or
// --stomp-port forces them on): stomp.listeners.tcp.*, else 61613 on the AMQP addresses.
struct StompConfig {
  std::vector<ListenAddress> listeners;
  std::vector<ListenAddress> tls_listeners;  // stomp.listeners.ssl.* / --stomps-port: STOMP over TLS
  stomp::Settings settings;  // stomp.default_user, default_pass, default_vhost, ...
  // STOMP over WebSocket (rabbitmq_web_stomp), on the AMQP listeners' addresses.
  uint16_t web_port = 15674;     // web_stomp.tcp.port
  std::string web_path = "/ws";  // web_stomp.ws_path
  bool web_binary = false;       // web_stomp.ws_frame = binary (RabbitMQ's default: text)
};

struct Config {
  // AMQP listeners, resolved from --bind/--amqp-port and listeners.tcp.*: loopback on IPv4 and
  // IPv6 by default.
  std::vector<ListenAddress> amqp_listeners;
  uint16_t management_port = 15672;
  uint16_t prometheus_port = 15692;
  // The web UI's built assets (www/dist of the source tree unless told otherwise).
  std::string management_www = WARREN_DEFAULT_WWW_DIR;
  // How often message counters are sampled into rates (RabbitMQ's collect_statistics_interval).
  uint32_t collect_statistics_interval_ms = 5000;
  std::string data_dir = "./data";
  std::string config_file;
  std::string log_level = "info";
  std::string log_file;       // "" = none
  bool log_console = true;    // log.console
  std::string console_level;  // log.console.level; "" = log_level
  broker::DefaultAccess default_access;
  std::vector<std::string> loopback_users = {"guest"};
  double vm_memory_high_watermark = 0.4;  // fraction of physical memory, as RabbitMQ
  uint64_t vm_memory_high_watermark_absolute = 0;  // bytes; overrides the fraction when set
  uint32_t segment_size = 0;  // message journal segment size in bytes; 0 = the store's default
  broker::Limits limits;
  TlsConfig tls;
  // MQTT (rabbitmq_mqtt): where it listens once the plugin is enabled (or --mqtt-port forces
  // it on): mqtt.listeners.tcp.*, else 1883 on the AMQP addresses.
  std::vector<ListenAddress> mqtt_listeners;
  // mqtt.listeners.ssl.* / --mqtts-port: MQTT over TLS with ssl_options' certificate (none by
  // default, as RabbitMQ).
  std::vector<ListenAddress> mqtt_tls_listeners;
  mqtt::Settings mqtt;  // mqtt.* keys
  // MQTT over WebSocket (rabbitmq_web_mqtt), on the AMQP listeners' addresses.
  uint16_t web_mqtt_port = 15675;  // web_mqtt.tcp.port
  std::string web_mqtt_path = "/ws";  // web_mqtt.ws_path
  StompConfig stomp;
  // Plugins whose listener port was given on the command line (--management-port,
  // --prometheus-port, --mqtt-port, --web-mqtt-port, --stomp-port, --web-stomp-port): their
  // listeners are on whatever DATA_DIR/enabled_plugins says.
  std::set<std::string> forced_plugins;
};

// Parses argv, the environment and the config file. Returns nullopt after printing help or an
// error (a bad flag, or a config file line with an unknown key or a bad value); *exit_code says
// how to exit then.
std::optional<Config> parse_config(int argc, char** argv, int* exit_code);

}  // namespace warren::server
