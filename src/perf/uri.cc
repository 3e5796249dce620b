#include "perf/uri.h"

#include <charconv>

namespace warren::perf {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::optional<AmqpUri> parse_amqp_uri(std::string_view uri, std::string* error) {
  AmqpUri u;
  std::string_view rest;
  if (uri.substr(0, 8) == "amqps://") {
    u.tls = true;
    u.port = 5671;
    rest = uri.substr(8);
  } else if (uri.substr(0, 7) == "amqp://") {
    rest = uri.substr(7);
  } else {
    *error = "URI must start with amqp:// or amqps://";
    return std::nullopt;
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto pass = colon == std::string_view::npos ? std::optional<std::string>(std::string())
                                                : percent_decode(userinfo.substr(colon + 1));
    if (!user || !pass) {
      *error = "bad percent-encoding in URI user info";
      return std::nullopt;
    }
    u.user = *user;
    u.password = *pass;
  }

  std::string_view host = authority, port;
  if (!authority.empty() && authority[0] == '[') {  // [ipv6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "unterminated [ in URI host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *error = "unexpected text after ] in URI host";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (!host.empty()) u.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      *error = "bad port in URI: " + std::string(port);
      return std::nullopt;
    }
    u.port = static_cast<uint16_t>(p);
  }

  if (path.size() > 1) {
    auto vhost = percent_decode(path.substr(1));
    if (!vhost) {
      *error = "bad percent-encoding in URI vhost";
      return std::nullopt;
    }
    u.vhost = *vhost;
  }
  return u;
}

}  // namespace warren::perf
