#include "server/tcp_listener.h"

#include <boost/asio/ip/v6_only.hpp>
#include <spdlog/spdlog.h>


namespace warren::server {

namespace asio = boost::asio;

TcpListener::TcpListener(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                         AcceptFn on_accept)
    : on_accept_(std::move(on_accept)), acceptor_(io), retry_timer_(io) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  // An IPv6 listener takes IPv6 only, so an IPv4 one can share its port (127.0.0.1 and ::1).
  if (endpoint.protocol() == asio::ip::tcp::v6()) acceptor_.set_option(asio::ip::v6_only(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void TcpListener::start() { accept(); }

void TcpListener::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
}

void TcpListener::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      on_accept_(std::move(socket));
      accept();
      return;
    }
    // Out of file descriptors (or similar): retrying at once would spin and flood the log.
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning_ > std::chrono::seconds(1)) {
      spdlog::warn("accept failed: {}; retrying every 100 ms", ec.message());
      last_accept_warning_ = now;
    }
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
  });
}

}  // namespace warren::server
