// HTTP servers (management API, Prometheus) on the AMQP listeners' addresses, one port for all
// of them (port 0: the free port the first one got).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http/http_server.h"
#include "server/config.h"

namespace warren::server {

class HttpListeners {
 public:
  // false with *error when an address cannot be bound (an IPv6 address the host lacks is
  // skipped with a warning once another one is up).
  bool open(boost::asio::io_context& io, const std::vector<ListenAddress>& addresses,
            uint16_t port, const http::Handler& handler, std::string* error);
  void start();
  void stop();
  uint16_t port() const { return servers_.empty() ? 0 : servers_.front().server->port(); }
  std::vector<std::string> describe() const;  // "address:port" of each

 private:
  struct Bound {
    std::string address;
    std::unique_ptr<http::HttpServer> server;
  };
  std::vector<Bound> servers_;
  // Stopped servers are kept (not destroyed) until this object goes: a completed accept may
  // still be queued for one, and its handler uses the server.
  std::vector<Bound> retired_;
};

}  // namespace warren::server
