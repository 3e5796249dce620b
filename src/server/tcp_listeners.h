// The listeners of one protocol: one per configured address (by default 127.0.0.1 and ::1, so
// clients that resolve `localhost` to either family connect). Listeners asked for port 0 get one
// free port number, the same on every address.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/tcp_listener.h"

namespace warren::server {

class TcpListeners {
 public:
  // what: the protocol's name in errors ("AMQP", "MQTT", ...).
  explicit TcpListeners(std::string what = "AMQP") : what_(std::move(what)) {}
  // Binds every address. An IPv6 address the host does not have (IPv6 disabled) is skipped with
  // a warning while another listener is up; any other failure is an error.
  bool open(boost::asio::io_context& io, const std::vector<ListenAddress>& addresses,
            const AcceptFn& on_accept, std::string* error);
  void start();
  void stop();
  // "address:port" of each bound listener, in configuration order.
  std::vector<std::string> describe() const;
  // The first bound listener's port (0 when none is open).
  uint16_t port() const { return bound_.empty() ? 0 : bound_.front().listener->port(); }

 private:
  struct Bound {
    std::string address;
    std::unique_ptr<TcpListener> listener;
  };
  std::string what_;
  std::vector<Bound> bound_;
  // Stopped listeners are kept (not destroyed) until this object goes: a completed accept may
  // still be queued for one, and its handler uses the listener.
  std::vector<Bound> retired_;
};

}  // namespace warren::server
