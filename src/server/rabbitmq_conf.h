// rabbitmq.conf, RabbitMQ's "sysctl" configuration format
// (https://www.rabbitmq.com/configure.html): one `key = value` per line, `#` comments, blank lines; keys are dotted paths. This file reads
// the lines and converts values; config.cc maps the keys Warren has onto its Config.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warren::server {

struct ConfEntry {
  std::string key;
  std::string value;
  int line = 0;
};

// The entries of a rabbitmq.conf text in file order. A line that is neither blank, a comment nor
// `key = value` is an error naming its line ("line 3: expected 'key = value', got 'foo'").
std::optional<std::vector<ConfEntry>> parse_rabbitmq_conf(const std::string& text,
                                                         std::string* error);

// Value conversions with RabbitMQ's spellings; nullopt for a bad value.
std::optional<int64_t> conf_integer(const std::string& v);
std::optional<bool> conf_bool(const std::string& v);  // true/false
// An information unit as rabbitmq.conf writes memory and disk sizes: a plain number of bytes, or
// with a unit: k/kiB/K/KiB = 2^10, M/MiB = 2^20, G/GiB = 2^30, T/TiB = 2^40 (IEC), kB/KB = 10^3,
// MB = 10^6, GB = 10^9, TB = 10^12 (SI).
std::optional<uint64_t> conf_bytes(const std::string& v);
std::optional<double> conf_fraction(const std::string& v);  // 0.0 .. 1.0

// A listener value: a port ("5672": every interface, as RabbitMQ), "addr:port", or "[v6]:port".
struct ConfListener {
  std::string address;  // "" = every interface
  uint16_t port = 0;
};
std::optional<ConfListener> conf_listener(const std::string& v);

}  // namespace warren::server
