// Accepts AMQP connections on one address and hands each socket to a Connection.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "broker/broker.h"

namespace warren::server {

class AmqpListener {
 public:
  AmqpListener(broker::Broker& broker, const boost::asio::ip::tcp::endpoint& endpoint);
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start();
  void stop();

 private:
  void accept();

  broker::Broker& broker_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace warren::server
