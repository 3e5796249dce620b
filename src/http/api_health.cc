// RabbitMQ's health checks (/api/health/checks/..., and the older /api/healthchecks/node), with
// its bodies: {"status":"ok", ...} with 200, or {"status":"failed","reason":..., ...} with 503.
// A single node has no quorum or mirror to lose and no vhost process that can be down, so those
// checks always pass, as they do on a single RabbitMQ node.
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>

#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

void ok(Response& r, json::object extra = {}) {
  extra.emplace("status", "ok");
  reply_json(r, bhttp::status::ok, extra);
}

void failed(Response& r, std::string_view reason, json::object extra = {}) {
  extra.emplace("status", "failed");
  extra.emplace("reason", reason);
  reply_json(r, bhttp::status::service_unavailable, extra);
}

void alarms(ApiCall& c) {
  json::array alarms;
  const std::string& node = c.info.node_name;
  if (c.broker.memory_alarm()) alarms.push_back(json::object{{"node", node}, {"resource", "memory"}});
  if (c.broker.disk_alarm()) alarms.push_back(json::object{{"node", node}, {"resource", "disk"}});
  if (alarms.empty()) return ok(c.r);
  bool local = c.seg()[2] == "local-alarms";
  failed(c.r, local ? "There are alarms in effect on the node"
                    : "resource alarm(s) in effect in the cluster",
         json::object{{"alarms", std::move(alarms)}});
}

void port_listener(ApiCall& c, const std::string& text) {
  char* end = nullptr;
  long port = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != 0 || port < 0 || port > 65535)
    return reply_error(c.r, bhttp::status::bad_request, "bad_request", "Invalid port");
  json::array ports;
  bool found = false;
  for (const ListenerInfo& l : c.info.listeners) {
    found |= l.port == port;
    if (std::find(ports.begin(), ports.end(), json::value(l.port)) == ports.end())
      ports.push_back(l.port);
  }
  if (found) return ok(c.r, json::object{{"port", port}});
  failed(c.r, "No active listener", json::object{{"missing", port}, {"ports", std::move(ports)}});
}

// RabbitMQ's aliases for protocol names (rabbit_mgmt_wm_health_check_protocol_listener).
std::string normalize_protocol(std::string p) {
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char ch) { return std::tolower(ch); });
  static const std::pair<const char*, const char*> kAliases[] = {
      {"amqp091", "amqp"},         {"amqp0.9.1", "amqp"},     {"amqp0-9-1", "amqp"},
      {"amqp0_9_1", "amqp"},       {"amqp10", "amqp"},        {"amqp1.0", "amqp"},
      {"amqp1-0", "amqp"},         {"amqp1_0", "amqp"},       {"amqps", "amqp/ssl"},
      {"mqtt3.1", "mqtt"},         {"mqtt3.1.1", "mqtt"},     {"mqtt31", "mqtt"},
      {"mqtt311", "mqtt"},         {"mqtt3_1", "mqtt"},       {"mqtt3_1_1", "mqtt"},
      {"mqtts", "mqtt/ssl"},       {"mqtt+tls", "mqtt/ssl"},  {"mqtt+ssl", "mqtt/ssl"},
      {"stomp1.0", "stomp"},       {"stomp1.1", "stomp"},     {"stomp1.2", "stomp"},
      {"stomp10", "stomp"},        {"stomp11", "stomp"},      {"stomp12", "stomp"},
      {"stomp1_0", "stomp"},       {"stomp1_1", "stomp"},     {"stomp1_2", "stomp"},
      {"stomps", "stomp/ssl"},     {"stomp+tls", "stomp/ssl"}, {"stomp+ssl", "stomp/ssl"},
      {"http1", "http"},           {"http1.1", "http"},       {"http_api", "http"},
      {"management", "http"},      {"management_ui", "http"}, {"ui", "http"},
      {"cli", "clustering"},       {"distribution", "clustering"},
      {"webmqtt", "http/web-mqtt"}, {"web-mqtt", "http/web-mqtt"}, {"web_mqtt", "http/web-mqtt"},
      {"webstomp", "http/web-stomp"}, {"web-stomp", "http/web-stomp"},
      {"web_stomp", "http/web-stomp"}, {"prometheus", "http/prometheus"}};
  for (const auto& [alias, name] : kAliases)
    if (p == alias) return name;
  return p;
}

void protocol_listener(ApiCall& c, std::string_view asked) {
  json::array active, missing;
  for (const ListenerInfo& l : c.info.listeners)
    if (std::find(active.begin(), active.end(), json::value(l.protocol)) == active.end())
      active.push_back(json::string(l.protocol));
  while (!asked.empty()) {
    std::string_view one = asked.substr(0, asked.find(','));
    asked.remove_prefix(std::min(asked.size(), one.size() + 1));
    json::value p = json::string(normalize_protocol(std::string(one)));
    if (std::find(active.begin(), active.end(), p) == active.end() &&
        std::find(missing.begin(), missing.end(), p) == missing.end())
      missing.push_back(std::move(p));
  }
  if (missing.empty()) return ok(c.r, json::object{{"protocols", std::move(active)}});
  failed(c.r, "No active listener",
         json::object{{"missing", std::move(missing)}, {"protocols", std::move(active)}});
}

// "2027-01-05 9:03:07", as RabbitMQ prints a certificate's expiry (hour not padded).
std::string format_utc(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%d-%02d-%02d %d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// The notAfter dates of a PEM file's certificates that fall before `deadline` (or a reason the
// file cannot be checked); empty when none expires by then or there is no file.
json::value expiring(const std::string& path, std::time_t deadline) {
  if (path.empty()) return json::array();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "r"), &std::fclose);
  if (!f) return json::object{{"error", "cannot read " + path}};
  json::array out;
  size_t certificates = 0;
  while (X509* raw = PEM_read_X509(f.get(), nullptr, nullptr, nullptr)) {
    std::unique_ptr<X509, void (*)(X509*)> cert(raw, &X509_free);
    ++certificates;
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) continue;
    std::time_t not_after = timegm(&tm);
    if (not_after < deadline) out.push_back(json::string(format_utc(not_after)));
  }
  if (certificates == 0)
    return json::object{{"error", "The certificate file provided does not contain any PEM entry."}};
  return out;
}

void certificate_expiration(ApiCall& c, const std::string& within, std::string unit) {
  char* end = nullptr;
  long long n = std::strtoll(within.c_str(), &end, 10);
  if (within.empty() || *end != 0)
    return reply_error(c.r, bhttp::status::bad_request, "bad_request", "Invalid expiration value.");
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  constexpr long long kDay = 86400;
  long long per = unit == "days" ? kDay : unit == "weeks" ? 7 * kDay
                : unit == "months" ? 30 * kDay : unit == "years" ? 365 * kDay : 0;
  if (per == 0)
    return reply_error(c.r, bhttp::status::bad_request, "bad_request",
                       "Time unit not recognised. Supported units: days, weeks, months, years.");
  std::time_t deadline = std::time(nullptr) + static_cast<std::time_t>(n * per);
  json::array expired;
  for (const ListenerInfo& l : c.info.listeners) {
    if (l.certfile.empty()) continue;
    json::value cert = expiring(l.certfile, deadline), ca = expiring(l.cacertfile, deadline);
    bool none = cert.is_array() && cert.get_array().empty() && ca.is_array() &&
                ca.get_array().empty();
    if (none) continue;
    expired.push_back(json::object{{"node", c.info.node_name},
                                   {"protocol", l.protocol},
                                   {"interface", l.ip_address},
                                   {"port", l.port},
                                   {"certfile", l.certfile},
                                   {"cacertfile", l.cacertfile},
                                   {"certfile_expires_on", std::move(cert)},
                                   {"cacertfile_expires_on", std::move(ca)}});
  }
  if (expired.empty()) return ok(c.r);
  failed(c.r, "Certificates expiring", json::object{{"expired", std::move(expired)}});
}

}  // namespace

void handle_health(ApiCall& c) {
  const auto& seg = c.seg();
  if (c.method() != bhttp::verb::get) return method_not_allowed(c.r);
  if (seg[0] == "healthchecks") {  // the pre-3.8 node check: the node answers, so it is up
    if (seg.size() == 2 && seg[1] == "node") return ok(c.r);
    if (seg.size() == 3 && seg[1] == "node" && seg[2] == c.info.node_name) return ok(c.r);
    return not_found(c.r);
  }
  if (seg.size() < 3 || seg[1] != "checks") return not_found(c.r);
  const std::string& check = seg[2];
  if (seg.size() == 3) {
    if (check == "alarms" || check == "local-alarms") return alarms(c);
    if (check == "virtual-hosts" || check == "is-in-service" ||
        check == "below-node-connection-limit" || check == "node-is-mirror-sync-critical")
      return ok(c.r);
    if (check == "node-is-quorum-critical")
      return ok(c.r, json::object{{"reason", "single node cluster"}});
    if (check == "ready-to-serve-clients") {
      for (const ListenerInfo& l : c.info.listeners)
        if (l.protocol == "amqp" || l.protocol == "amqp/ssl") return ok(c.r);
      return failed(c.r, "no active listeners for AMQP/AMQPS");
    }
  }
  if (check == "port-listener" && seg.size() == 4) return port_listener(c, seg[3]);
  if (check == "protocol-listener" && seg.size() == 4) return protocol_listener(c, seg[3]);
  if (check == "certificate-expiration" && seg.size() == 5)
    return certificate_expiration(c, seg[3], seg[4]);
  if (check == "metadata-store" && seg.size() >= 4 && seg[3] == "initialized" &&
      (seg.size() == 4 || (seg.size() == 5 && seg[4] == "with-data")))
    return ok(c.r);
  not_found(c.r);
}

}  // namespace warren::http
