// amqp://user:pass@host:port/vhost parsing for warren-perf.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren::perf {

struct AmqpUri {
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  bool tls = false;  // amqps:// (default port 5671)
};

// Parses an amqp:// or amqps:// URI (user, password and vhost are percent-decoded; an empty path or "/" means
// the default vhost "/", "%2f" spells it explicitly). nullopt with *error set when malformed.
std::optional<AmqpUri> parse_amqp_uri(std::string_view uri, std::string* error);

}  // namespace warren::perf
