#include "server/amqp_listener.h"

#include <boost/asio/ip/v6_only.hpp>
#include <spdlog/spdlog.h>

#include "amqp/connection.h"

namespace warren::server {

namespace asio = boost::asio;

AmqpListener::AmqpListener(broker::Broker& broker, const asio::ip::tcp::endpoint& endpoint,
                           amqp::TlsContext* tls)
    : broker_(broker), tls_(tls), acceptor_(broker.io()), retry_timer_(broker.io()) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  // An IPv6 listener takes IPv6 only, so an IPv4 one can share its port (127.0.0.1 and ::1).
  if (endpoint.protocol() == asio::ip::tcp::v6()) acceptor_.set_option(asio::ip::v6_only(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void AmqpListener::start() { accept(); }

void AmqpListener::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
}

void AmqpListener::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      std::make_shared<amqp::Connection>(std::move(socket), broker_, tls_)->start();
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
