#include "server/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <CLI/CLI.hpp>

#include "server/rabbitmq_conf.h"

namespace warren::server {

namespace {

constexpr uint16_t kDefaultAmqpPort = 5672;
constexpr uint16_t kDefaultAmqpsPort = 5671;
constexpr uint16_t kDefaultStompPort = 61613;

// What the config file said about listeners, resolved against the flags in resolve_listeners.
struct FileListeners {
  std::vector<ListenAddress> tcp;  // listeners.tcp.*, in file order
  std::vector<ListenAddress> mqtt;  // mqtt.listeners.tcp.*
  std::vector<ListenAddress> mqtt_tls;  // mqtt.listeners.ssl.*
  std::vector<ListenAddress> stomp_tls;  // stomp.listeners.ssl.*
  std::vector<ListenAddress> stomp;  // stomp.listeners.tcp.*
};

// Every interface, as RabbitMQ listens for a listener given as a bare port.
void add_listener(std::vector<ListenAddress>& out, const ConfListener& l) {
  if (l.address.empty()) {
    out.push_back({"0.0.0.0", l.port});
    out.push_back({"::", l.port});
  } else {
    out.push_back({l.address, l.port});
  }
}

// Applies one `key = value`; an error text ("must be ..., got ...", "unknown key") otherwise.
std::optional<std::string> apply_entry(const ConfEntry& e, Config& c, FileListeners& files) {
  const std::string& k = e.key;
  const std::string& v = e.value;
  auto bad = [&](const char* what) -> std::optional<std::string> {
    return "'" + k + "' must be " + what + ", got '" + v + "'";
  };
  auto prefixed = [&](std::string_view prefix, std::string* rest) {
    if (k.size() <= prefix.size() || k.compare(0, prefix.size(), prefix) != 0) return false;
    *rest = k.substr(prefix.size());
    return true;
  };
  std::string rest;
  if (prefixed("listeners.tcp.", &rest)) {
    auto l = conf_listener(v);
    if (!l) return bad("a port or address:port");
    add_listener(files.tcp, *l);
    return std::nullopt;
  }
  for (auto [prefix, out] : {std::pair{"mqtt.listeners.ssl.", &files.mqtt_tls},
                             {"stomp.listeners.ssl.", &files.stomp_tls}}) {
    if (!prefixed(prefix, &rest)) continue;
    auto l = conf_listener(v);
    if (!l) return bad("a port or address:port");
    add_listener(*out, *l);
    return std::nullopt;
  }
  if (prefixed("mqtt.listeners.tcp.", &rest)) {
    auto l = conf_listener(v);
    if (!l) return bad("a port or address:port");
    add_listener(files.mqtt, *l);
    return std::nullopt;
  }
  if (prefixed("stomp.listeners.tcp.", &rest)) {
    auto l = conf_listener(v);
    if (!l) return bad("a port or address:port");
    add_listener(files.stomp, *l);
    return std::nullopt;
  }
  if (k == "listeners.ssl.default") {
    auto l = conf_listener(v);
    if (!l) return bad("a port or address:port");
    c.tls.port = l->port;
    return std::nullopt;
  }
  if (prefixed("default_user_tags.", &rest)) {
    auto on = conf_bool(v);
    if (!on) return bad("true or false");
    std::erase(c.default_access.tags, rest);
    if (*on) c.default_access.tags.push_back(rest);
    return std::nullopt;
  }
  if (prefixed("loopback_users.", &rest)) {
    auto on = conf_bool(v);
    if (!on) return bad("true or false");
    std::erase(c.loopback_users, rest);
    if (*on) c.loopback_users.push_back(rest);
    return std::nullopt;
  }
  if (k == "loopback_users") {
    if (v != "none") return bad("none (or use loopback_users.<name> = true|false)");
    c.loopback_users.clear();
    return std::nullopt;
  }
  // Keys with one value each.
  using Setter = std::function<std::optional<std::string>()>;
  auto integer = [&](auto& field, int64_t lo, int64_t hi) -> std::optional<std::string> {
    auto n = conf_integer(v);
    if (!n || *n < lo || *n > hi)
      return "'" + k + "' must be an integer from " + std::to_string(lo) + " to " +
             std::to_string(hi) + ", got '" + v + "'";
    field = static_cast<std::remove_reference_t<decltype(field)>>(*n);
    return std::nullopt;
  };
  auto text = [&](std::string& field) -> std::optional<std::string> {
    field = v;
    return std::nullopt;
  };
  auto boolean = [&](bool& field) -> std::optional<std::string> {
    auto b = conf_bool(v);
    if (!b) return bad("true or false");
    field = *b;
    return std::nullopt;
  };
  auto bytes = [&](uint64_t& field) -> std::optional<std::string> {
    auto b = conf_bytes(v);
    if (!b) return bad("a size in bytes (e.g. 1073741824, 1GB, 512MiB)");
    field = *b;
    return std::nullopt;
  };
  auto level = [&](std::string& field) -> std::optional<std::string> {
    static const char* kLevels[] = {"debug", "info", "warning", "error", "critical", "none",
                                    "trace", "warn"};
    for (const char* l : kLevels)
      if (v == l) {
        field = v == "warning" ? "warn" : v == "none" ? "off" : v;
        return std::nullopt;
      }
    return bad("debug, info, warning, error, critical or none");
  };
  const std::map<std::string, Setter, std::less<>> keys = {
      {"default_user", [&] { return text(c.default_access.user); }},
      {"default_pass", [&] { return text(c.default_access.pass); }},
      {"default_vhost", [&] { return text(c.default_access.vhost); }},
      {"heartbeat", [&] { return integer(c.limits.heartbeat, 0, 65535); }},
      {"frame_max", [&] { return integer(c.limits.frame_max, 4096, 16 << 20); }},
      {"channel_max", [&] { return integer(c.limits.channel_max, 1, 65535); }},
      {"vm_memory_high_watermark.relative",
       [&]() -> std::optional<std::string> {
         auto f = conf_fraction(v);
         if (!f) return bad("a fraction from 0 to 1");
         c.vm_memory_high_watermark = *f;
         c.vm_memory_high_watermark_absolute = 0;
         return std::nullopt;
       }},
      {"vm_memory_high_watermark.absolute",
       [&] { return bytes(c.vm_memory_high_watermark_absolute); }},
      {"disk_free_limit.absolute", [&] { return bytes(c.limits.disk_free_limit); }},
      {"ssl_options.cacertfile", [&] { return text(c.tls.cacertfile); }},
      {"ssl_options.certfile", [&] { return text(c.tls.certfile); }},
      {"ssl_options.keyfile", [&] { return text(c.tls.keyfile); }},
      {"ssl_options.verify",
       [&]() -> std::optional<std::string> {
         if (v != "verify_none" && v != "verify_peer") return bad("verify_none or verify_peer");
         c.tls.verify = v;
         return std::nullopt;
       }},
      {"ssl_options.fail_if_no_peer_cert", [&] { return boolean(c.tls.fail_if_no_peer_cert); }},
      {"ssl_handshake_timeout", [&] { return integer(c.tls.handshake_timeout_ms, 1, 3'600'000); }},
      {"log.level", [&] { return level(c.log_level); }},
      {"log.file",
       [&]() -> std::optional<std::string> {
         c.log_file = v == "false" ? "" : v;
         return std::nullopt;
       }},
      {"log.file.level", [&] { return level(c.log_level); }},
      {"log.console", [&] { return boolean(c.log_console); }},
      {"log.console.level", [&] { return level(c.console_level); }},
      {"management.tcp.port", [&] { return integer(c.management_port, 0, 65535); }},
      {"prometheus.tcp.port", [&] { return integer(c.prometheus_port, 0, 65535); }},
      {"collect_statistics_interval",
       [&] { return integer(c.collect_statistics_interval_ms, 100, 3'600'000); }},
      {"data_dir", [&] { return text(c.data_dir); }},
      {"web_mqtt.tcp.port", [&] { return integer(c.web_mqtt_port, 0, 65535); }},
      {"web_mqtt.ws_path", [&] { return text(c.web_mqtt_path); }},
      {"web_stomp.tcp.port", [&] { return integer(c.stomp.web_port, 0, 65535); }},
      {"web_stomp.ws_path", [&] { return text(c.stomp.web_path); }},
      {"web_stomp.ws_frame",
       [&]() -> std::optional<std::string> {
         if (v != "text" && v != "binary") return bad("text or binary");
         c.stomp.web_binary = v == "binary";
         return std::nullopt;
       }},
      {"mqtt.vhost", [&] { return text(c.mqtt.vhost); }},
      {"mqtt.exchange", [&] { return text(c.mqtt.exchange); }},
      {"mqtt.allow_anonymous", [&] { return boolean(c.mqtt.allow_anonymous); }},
      {"mqtt.default_user", [&] { return text(c.mqtt.default_user); }},
      {"mqtt.default_pass", [&] { return text(c.mqtt.default_pass); }},
      {"mqtt.prefetch", [&] { return integer(c.mqtt.prefetch, 1, 65535); }},
      {"mqtt.subscription_ttl",
       [&]() -> std::optional<std::string> {
         if (v == "undefined" || v == "infinity") {
           c.mqtt.max_session_expiry_ms = UINT64_MAX;
           return std::nullopt;
         }
         return integer(c.mqtt.max_session_expiry_ms, 1, int64_t{1} << 40);
       }},
      {"mqtt.max_session_expiry_interval_seconds",
       [&]() -> std::optional<std::string> {
         if (v == "infinity") {
           c.mqtt.max_session_expiry_ms = UINT64_MAX;
           return std::nullopt;
         }
         int64_t seconds = 0;
         if (auto e = integer(seconds, 0, UINT32_MAX)) return e;
         c.mqtt.max_session_expiry_ms = static_cast<uint64_t>(seconds) * 1000;
         return std::nullopt;
       }},
      {"mqtt.ssl_cert_login", [&] { return boolean(c.mqtt.ssl_cert_login); }},
      {"mqtt.topic_alias_maximum", [&] { return integer(c.mqtt.topic_alias_maximum, 0, 65535); }},
      {"mqtt.ignore_colons_in_username",
       [&] { return boolean(c.mqtt.ignore_colons_in_username); }},
      {"mqtt.max_packet_size_unauthenticated",
       [&] { return integer(c.mqtt.max_packet_size_unauthenticated, 1, 268'435'455); }},
      {"mqtt.max_packet_size_authenticated",
       [&] { return integer(c.mqtt.max_packet_size_authenticated, 1, 268'435'455); }},
      {"stomp.default_user", [&] { return text(c.stomp.settings.default_login); }},
      {"stomp.default_pass", [&] { return text(c.stomp.settings.default_passcode); }},
      {"stomp.default_vhost", [&] { return text(c.stomp.settings.default_vhost); }},
      {"stomp.default_nack_requeue", [&] { return boolean(c.stomp.settings.default_nack_requeue); }},
      {"stomp.implicit_connect", [&] { return boolean(c.stomp.settings.implicit_connect); }},
      {"stomp.max_frame_size", [&] { return integer(c.stomp.settings.max_frame_size, 1, 512 << 20); }},
      {"stomp.login_timeout", [&] { return integer(c.stomp.settings.login_timeout_ms, 1, 3'600'000); }},
  };
  auto it = keys.find(k);
  if (it == keys.end()) return "unknown key '" + k + "'";
  return it->second();
}

bool load_config_file(const std::string& path, Config& c, FileListeners& files,
                      std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read config file " + path;
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string parse_error;
  auto entries = parse_rabbitmq_conf(buffer.str(), &parse_error);
  if (!entries) {
    *error = "config file " + path + " " + parse_error;
    return false;
  }
  for (const ConfEntry& e : *entries) {
    if (auto bad = apply_entry(e, c, files)) {
      *error = "config file " + path + " line " + std::to_string(e.line) + ": " + *bad;
      return false;
    }
  }
  return true;
}

// The --config path before CLI11 parses the flags: the file's values are defaults that the flags
// then override.
std::string config_path_from_argv(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) path = argv[++i];
    else if (a.starts_with("--config=")) path = std::string(a.substr(9));
  }
  if (path.empty())
    if (const char* env = std::getenv("RABBITMQ_CONFIG_FILE"); env != nullptr) path = env;
  return path;
}

}  // namespace

std::optional<Config> parse_config(int argc, char** argv, int* exit_code) {
  Config c;
  // Environment (RabbitMQ's Docker image variables are honoured too).
  for (const char* var : {"RABBITMQ_DEFAULT_USER", "WARREN_DEFAULT_USER"})
    if (const char* v = std::getenv(var)) c.default_access.user = v;
  for (const char* var : {"RABBITMQ_DEFAULT_PASS", "WARREN_DEFAULT_PASS"})
    if (const char* v = std::getenv(var)) c.default_access.pass = v;
  for (const char* var : {"RABBITMQ_DEFAULT_VHOST", "WARREN_DEFAULT_VHOST"})
    if (const char* v = std::getenv(var)) c.default_access.vhost = v;
  if (const char* v = std::getenv("WARREN_DATA_DIR")) c.data_dir = v;

  FileListeners files;
  c.config_file = config_path_from_argv(argc, argv);
  if (!c.config_file.empty()) {
    std::string error;
    if (!load_config_file(c.config_file, c, files, &error)) {
      std::fprintf(stderr, "warren-server: %s\n", error.c_str());
      *exit_code = 1;
      return std::nullopt;
    }
  }

  std::vector<std::string> binds;
  uint16_t amqp_port = kDefaultAmqpPort;
  uint16_t amqps_port = kDefaultAmqpsPort;
  uint16_t stomp_port = kDefaultStompPort;
  CLI::App app{"Warren: an AMQP 0-9-1 message broker compatible with RabbitMQ clients",
               "warren-server"};
  app.add_option("--config", c.config_file,
                 "rabbitmq.conf-style file (key = value); env RABBITMQ_CONFIG_FILE");
  app.add_option("--amqp-port", amqp_port, "AMQP listener port (0 = any free port)")
      ->default_str("5672");
  app.add_option("--bind", binds,
                 "Addresses to listen on, repeatable or comma-separated (default 127.0.0.1,::1)")
      ->delimiter(',');
  app.add_option("--management-port", c.management_port,
                 "Management HTTP API port (0 = any free port)")
      ->capture_default_str();
  app.add_option("--management-www", c.management_www,
                 "Directory of the management web UI's built assets, served at /")
      ->capture_default_str();
  app.add_option("--prometheus-port", c.prometheus_port,
                 "Prometheus metrics port, /metrics (0 = any free port)")
      ->capture_default_str();
  uint16_t mqtt_port = 1883;
  app.add_option("--mqtt-port", mqtt_port,
                 "MQTT listener port, on the --bind addresses (0 = any free port); turns MQTT on")
      ->default_str("1883");
  uint16_t mqtts_port = 8883, stomps_port = 61614;
  app.add_option("--mqtts-port", mqtts_port,
                 "MQTT over TLS port with the --ssl-* certificate (0 = any free port); turns it on")
      ->default_str("8883");
  app.add_option("--stomps-port", stomps_port,
                 "STOMP over TLS port with the --ssl-* certificate (0 = any free port); turns it on")
      ->default_str("61614");
  uint16_t web_stomp_port = 15674;
  app.add_option("--web-stomp-port", web_stomp_port,
                 "STOMP over WebSocket port, path /ws (0 = any free port); turns it on")
      ->default_str("15674");
  uint16_t web_mqtt_port = 15675;
  app.add_option("--web-mqtt-port", web_mqtt_port,
                 "MQTT over WebSocket port, path /ws (0 = any free port); turns it on")
      ->default_str("15675");
  app.add_option("--collect-statistics-interval", c.collect_statistics_interval_ms,
                 "Milliseconds between samples of message rates (collect_statistics_interval)")
      ->check(CLI::Range(100, 3'600'000))
      ->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "Data directory (env WARREN_DATA_DIR)")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--log-file", c.log_file, "Also write the log to this file");
  app.add_option("--default-user", c.default_access.user,
                 "First user (env RABBITMQ_DEFAULT_USER / WARREN_DEFAULT_USER)")
      ->capture_default_str();
  app.add_option("--default-pass", c.default_access.pass,
                 "Its password (env RABBITMQ_DEFAULT_PASS / WARREN_DEFAULT_PASS)");
  app.add_option("--default-vhost", c.default_access.vhost,
                 "First vhost (env RABBITMQ_DEFAULT_VHOST / WARREN_DEFAULT_VHOST)")
      ->capture_default_str();
  app.add_option("--frame-max", c.limits.frame_max, "Largest frame offered in connection.tune")
      ->capture_default_str()
      ->check(CLI::Range(4096u, 16u << 20));
  app.add_option("--channel-max", c.limits.channel_max, "Most channels per connection")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  app.add_option("--heartbeat", c.limits.heartbeat,
                 "Heartbeat interval in seconds offered in connection.tune (0 = off)")
      ->capture_default_str();
  app.add_option("--max-message-size", c.limits.max_message_size, "Largest message body in bytes")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{512} << 20));
  app.add_option("--vm-memory-high-watermark", c.vm_memory_high_watermark,
                 "Block publishers while messages use more than this fraction of RAM")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--vm-memory-high-watermark-absolute", c.vm_memory_high_watermark_absolute,
                 "The same as a number of bytes (overrides the fraction)");
  app.add_option("--disk-free-limit", c.limits.disk_free_limit,
                 "Block publishers while the data directory's disk has less free space than this "
                 "many bytes (0 = off)")
      ->capture_default_str();
  app.add_option("--segment-size", c.segment_size,
                 "Message journal segment file size in bytes (default 64 MiB)")
      ->check(CLI::Range(uint32_t{4096}, uint32_t{1} << 30));
  app.add_option("--amqps-port", amqps_port,
                 "AMQP over TLS port (default 5671 once a certificate is set; 0 = any free port)");
  app.add_option("--stomp-port", stomp_port,
                 "Turns on the STOMP listener on this port (0 = any free port), on the AMQP "
                 "addresses");
  app.add_option("--ssl-certfile", c.tls.certfile, "Server certificate (PEM)");
  app.add_option("--ssl-keyfile", c.tls.keyfile, "Its private key (PEM)");
  app.add_option("--ssl-cacertfile", c.tls.cacertfile, "CA certificates that sign client certs");
  app.add_option("--ssl-verify", c.tls.verify, "verify_none or verify_peer")
      ->check(CLI::IsMember({"verify_none", "verify_peer"}));
  app.add_option("--ssl-fail-if-no-peer-cert", c.tls.fail_if_no_peer_cert,
                 "With verify_peer: refuse clients without a certificate");
  app.add_option("--ssl-handshake-timeout", c.tls.handshake_timeout_ms,
                 "Milliseconds a client has to finish the TLS handshake")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return std::nullopt;
  }

  // Listeners: flags win over the file; the file over the default (loopback, both families).
  const bool port_flag = app.count("--amqp-port") > 0;
  if (!binds.empty() || port_flag || files.tcp.empty()) {
    if (binds.empty()) {
      for (const ListenAddress& l : files.tcp) binds.push_back(l.address);
      if (binds.empty()) binds = {"127.0.0.1", "::1"};
    }
    uint16_t port = port_flag || files.tcp.empty() ? amqp_port : files.tcp.front().port;
    for (const std::string& b : binds)
      if (!b.empty()) c.amqp_listeners.push_back({b, port});
  } else {
    c.amqp_listeners = files.tcp;
  }
  // MQTT and STOMP listen where their flag's port says (on the file's addresses for them, else
  // the AMQP ones), else on the file's listeners, else on their default port.
  auto protocol_listeners = [&](const char* flag, uint16_t port, uint16_t default_port,
                                const std::vector<ListenAddress>& from_file) {
    std::vector<ListenAddress> out;
    const bool given = app.count(flag) > 0;
    if (!given && !from_file.empty()) return from_file;
    const std::vector<ListenAddress>& addresses = from_file.empty() ? c.amqp_listeners : from_file;
    for (const ListenAddress& l : addresses) out.push_back({l.address, given ? port : default_port});
    return out;
  };
  c.mqtt_listeners = protocol_listeners("--mqtt-port", mqtt_port, 1883, files.mqtt);
  c.stomp.listeners = protocol_listeners("--stomp-port", stomp_port, kDefaultStompPort, files.stomp);
  // TLS listeners only where a key or flag asks for them.
  auto tls_listeners = [&](const char* flag, uint16_t port, const std::vector<ListenAddress>& from_file) {
    if (app.count(flag) == 0) return from_file;
    std::vector<ListenAddress> out;
    for (const ListenAddress& l : from_file.empty() ? c.amqp_listeners : from_file)
      out.push_back({l.address, port});
    return out;
  };
  c.mqtt_tls_listeners = tls_listeners("--mqtts-port", mqtts_port, files.mqtt_tls);
  c.stomp.tls_listeners = tls_listeners("--stomps-port", stomps_port, files.stomp_tls);
  if (app.count("--web-mqtt-port") > 0) c.web_mqtt_port = web_mqtt_port;
  if (app.count("--web-stomp-port") > 0) c.stomp.web_port = web_stomp_port;
  for (const auto& [flag, plugin] :
       {std::pair{"--management-port", "rabbitmq_management"},
        {"--prometheus-port", "rabbitmq_prometheus"}, {"--mqtt-port", "rabbitmq_mqtt"},
        {"--web-mqtt-port", "rabbitmq_web_mqtt"}, {"--stomp-port", "rabbitmq_stomp"},
        {"--web-stomp-port", "rabbitmq_web_stomp"}, {"--mqtts-port", "rabbitmq_mqtt/ssl"},
        {"--stomps-port", "rabbitmq_stomp/ssl"}})
    if (app.count(flag) > 0) c.forced_plugins.insert(plugin);
  if (app.count("--amqps-port") > 0) c.tls.port = amqps_port;
  else if (!c.tls.port && !c.tls.certfile.empty()) c.tls.port = kDefaultAmqpsPort;

  if (c.vm_memory_high_watermark_absolute > 0) {
    c.limits.memory_high_watermark = c.vm_memory_high_watermark_absolute;
  } else {
    double ram = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
    c.limits.memory_high_watermark = static_cast<uint64_t>(ram * c.vm_memory_high_watermark);
  }
  return c;
}

}  // namespace warren::server
