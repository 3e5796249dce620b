#include "server/http_listeners.h"

#include <boost/asio/ip/address.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace warren::server {

namespace asio = boost::asio;

bool HttpListeners::open(asio::io_context& io, const std::vector<ListenAddress>& addresses,
                         uint16_t port, const http::Handler& handler, std::string* error) {
  servers_.clear();
  for (const ListenAddress& l : addresses) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(l.address, ec);
    if (ec) {
      *error = "cannot listen for HTTP on " + l.address + ": not an IP address";
      return false;
    }
    try {
      auto server = std::make_unique<http::HttpServer>(io, asio::ip::tcp::endpoint(address, port),
                                                       handler);
      port = server->port();  // the others share the port the first one got
      servers_.push_back({l.address, std::move(server)});
    } catch (const boost::system::system_error& e) {
      if (!servers_.empty() && address.is_v6() && e.code() != asio::error::address_in_use) {
        spdlog::warn("HTTP not listening on {}: {}", l.address, e.code().message());
        continue;
      }
      *error = "cannot listen for HTTP on " + l.address + ":" + std::to_string(port) + ": " +
               e.code().message();
      return false;
    }
  }
  return true;
}

void HttpListeners::start() {
  for (Bound& b : servers_) b.server->start();
}

void HttpListeners::stop() {
  for (Bound& b : servers_) {
    b.server->stop();
    retired_.push_back(std::move(b));
  }
  servers_.clear();
}

std::vector<std::string> HttpListeners::describe() const {
  std::vector<std::string> out;
  for (const Bound& b : servers_) out.push_back(b.address + ":" + std::to_string(b.server->port()));
  return out;
}

}  // namespace warren::server
