#include "server/tcp_listeners.h"

#include <boost/asio/ip/address.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace warren::server {

namespace asio = boost::asio;

namespace {

// The host has no such IPv6 address or no IPv6 at all.
bool ipv6_unavailable(const asio::ip::address& a, const boost::system::error_code& ec) {
  return a.is_v6() && (ec == asio::error::address_family_not_supported ||
                       ec == boost::system::errc::address_not_available);
}

}  // namespace

bool TcpListeners::open(asio::io_context& io, const std::vector<ListenAddress>& addresses,
                        const AcceptFn& on_accept, std::string* error) {
  const std::string& what = what_;
  // A free port chosen for the first port-0 listener is reused by the others; if another
  // family's address has it taken, start over with a new one (a few times).
  for (int attempt = 0; attempt < 5; ++attempt) {
    bound_.clear();
    uint16_t shared_port = 0;
    bool retry = false;
    for (const ListenAddress& l : addresses) {
      boost::system::error_code parse_ec;
      auto address = asio::ip::make_address(l.address, parse_ec);
      if (parse_ec) {
        *error = std::string("cannot listen for ") + what + " on " + l.address +
                 ": not an IP address";
        return false;
      }
      uint16_t port = l.port == 0 ? shared_port : l.port;
      try {
        auto listener =
            std::make_unique<TcpListener>(io, asio::ip::tcp::endpoint(address, port), on_accept);
        if (l.port == 0 && shared_port == 0) shared_port = listener->port();
        bound_.push_back({l.address, std::move(listener)});
      } catch (const boost::system::system_error& e) {
        if (ipv6_unavailable(address, e.code())) {
          spdlog::warn("not listening on {}: {} (IPv6 unavailable on this host?)", l.address,
                       e.code().message());
          continue;
        }
        if (l.port == 0 && shared_port != 0 && e.code() == asio::error::address_in_use) {
          retry = true;
          break;
        }
        *error = std::string("cannot listen for ") + what + " on " + l.address + ":" +
                 std::to_string(l.port) + ": " + e.code().message();
        return false;
      }
    }
    if (retry) continue;
    if (bound_.empty()) {
      *error = std::string("no ") + what + " listener could be opened";
      return false;
    }
    return true;
  }
  *error = std::string("cannot find a free port shared by every ") + what + " listen address";
  return false;
}

void TcpListeners::start() {
  for (Bound& b : bound_) b.listener->start();
}

void TcpListeners::stop() {
  for (Bound& b : bound_) {
    b.listener->stop();
    retired_.push_back(std::move(b));
  }
  bound_.clear();
}

std::vector<std::string> TcpListeners::describe() const {
  std::vector<std::string> out;
  for (const Bound& b : bound_) out.push_back(b.address + ":" + std::to_string(b.listener->port()));
  return out;
}

}  // namespace warren::server
