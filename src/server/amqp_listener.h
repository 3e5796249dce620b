// Accepts AMQP connections on one address and hands each socket to a Connection.
#pragma once

#include <chrono>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "amqp/tls_context.h"
#include "broker/broker.h"

namespace warren::server {

class AmqpListener {
 public:
  // Binds and listens; throws boost::system::system_error when it cannot (at start-up only).
  // tls: an amqps listener's TLS settings (outlive the listener), or null for plain AMQP.
  AmqpListener(broker::Broker& broker, const boost::asio::ip::tcp::endpoint& endpoint,
               amqp::TlsContext* tls = nullptr);
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start();
  void stop();

 private:
  void accept();

  broker::Broker& broker_;
  amqp::TlsContext* tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::steady_clock::time_point last_accept_warning_{};
};

}  // namespace warren::server
