#include "server/rabbitmq_conf.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string_view>

namespace warren::server {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool valid_key(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' &&
        c != '$')
      return false;
  return true;
}

}  // namespace

std::optional<std::vector<ConfEntry>> parse_rabbitmq_conf(const std::string& text,
                                                         std::string* error) {
  std::vector<ConfEntry> out;
  int number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++number;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    std::string_view key = eq == std::string_view::npos ? line : trim(line.substr(0, eq));
    if (eq == std::string_view::npos || !valid_key(key)) {
      *error = "line " + std::to_string(number) + ": expected 'key = value', got '" +
               std::string(line) + "'";
      return std::nullopt;
    }
    std::string_view value = trim(line.substr(eq + 1));
    // A value may be quoted (paths with spaces); the quotes are not part of it.
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    out.push_back(ConfEntry{std::string(key), std::string(value), number});
  }
  return out;
}

std::optional<int64_t> conf_integer(const std::string& v) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

std::optional<bool> conf_bool(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  return std::nullopt;
}

std::optional<uint64_t> conf_bytes(const std::string& v) {
  size_t digits = 0;
  while (digits < v.size() && std::isdigit(static_cast<unsigned char>(v[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + digits, n);
  if (ec != std::errc()) return std::nullopt;
  std::string_view unit = trim(std::string_view(v).substr(digits));
  struct Unit {
    std::string_view name;
    uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"k", 1ull << 10}, {"K", 1ull << 10}, {"kiB", 1ull << 10}, {"KiB", 1ull << 10},
      {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"G", 1ull << 30}, {"GiB", 1ull << 30},
      {"T", 1ull << 40}, {"TiB", 1ull << 40},
      {"kB", 1000ull}, {"KB", 1000ull}, {"MB", 1000'000ull}, {"GB", 1000'000'000ull},
      {"TB", 1000'000'000'000ull},
  };
  for (const Unit& u : kUnits) {
    if (u.name != unit) continue;
    if (n > UINT64_MAX / u.factor) return std::nullopt;
    return n * u.factor;
  }
  return std::nullopt;
}

std::optional<double> conf_fraction(const std::string& v) {
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || !std::isfinite(d) ||
      d < 0 || d > 1)
    return std::nullopt;
  return d;
}

std::optional<ConfListener> conf_listener(const std::string& v) {
  ConfListener l;
  std::string_view port = v;
  if (!v.empty() && v.front() == '[') {  // [::1]:5672
    size_t close = v.find("]:");
    if (close == std::string::npos) return std::nullopt;
    l.address = v.substr(1, close - 1);
    port = std::string_view(v).substr(close + 2);
  } else if (size_t colon = v.rfind(':'); colon != std::string::npos) {  // 127.0.0.1:5672, ::1:5672
    l.address = v.substr(0, colon);
    port = std::string_view(v).substr(colon + 1);
  }
  auto n = conf_integer(std::string(port));
  if (!n || *n < 0 || *n > 65535) return std::nullopt;
  l.port = static_cast<uint16_t>(*n);
  return l;
}

}  // namespace warren::server
