#include "server/amqp_listener.h"

#include <spdlog/spdlog.h>

#include "amqp/connection.h"

namespace warren::server {

namespace asio = boost::asio;

AmqpListener::AmqpListener(broker::Broker& broker, const asio::ip::tcp::endpoint& endpoint)
    : broker_(broker), acceptor_(broker.io()) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void AmqpListener::start() { accept(); }

void AmqpListener::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void AmqpListener::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      std::make_shared<amqp::Connection>(std::move(socket), broker_)->start();
    } else {
      spdlog::warn("accept failed: {}", ec.message());
    }
    accept();
  });
}

}  // namespace warren::server
