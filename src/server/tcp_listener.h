// Accepts TCP connections on one address and hands each socket to the protocol's connection
// factory (AMQP, AMQPS, MQTT, STOMP: each listener is told what to make of a socket).
#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace warren::server {

// Starts a protocol connection on an accepted socket (the connection keeps itself alive).
using AcceptFn = std::function<void(boost::asio::ip::tcp::socket)>;

class TcpListener {
 public:
  // Binds and listens; throws boost::system::system_error when it cannot (at start-up only).
  TcpListener(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
              AcceptFn on_accept);
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start();
  void stop();

 private:
  void accept();

  AcceptFn on_accept_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::steady_clock::time_point last_accept_warning_{};
};

}  // namespace warren::server
