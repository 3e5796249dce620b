// The AMQP listeners of one server: one per configured address (by default 127.0.0.1 and ::1,
// so clients that resolve `localhost` to either family connect). Listeners asked for port 0 get
// one free port number, the same on every address.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/amqp_listener.h"
#include "server/config.h"

namespace warren::server {

class AmqpListeners {
 public:
  // Binds every address. An IPv6 address the host does not have (IPv6 disabled) is skipped with
  // a warning while another listener is up; any other failure is an error.
  // tls: for amqps listeners (outlives them), else null.
  bool open(broker::Broker& broker, const std::vector<ListenAddress>& addresses,
            std::string* error, amqp::TlsContext* tls = nullptr);
  void start();
  void stop();
  // "address:port" of each bound listener, in configuration order.
  std::vector<std::string> describe() const;

 private:
  struct Bound {
    std::string address;
    std::unique_ptr<AmqpListener> listener;
  };
  std::vector<Bound> bound_;
};

}  // namespace warren::server
