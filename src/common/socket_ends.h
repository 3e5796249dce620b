// The two ends of a client's TCP connection as the broker lists them (peer_host, peer_port,
// host, port) and RabbitMQ names the connection ("peer:port -> host:port"). Every protocol's
// connection reads them once, when it is accepted.
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace warren {

struct SocketEnds {
  std::string peer_host, local_host;
  uint16_t peer_port = 0, local_port = 0;
  bool peer_is_loopback = false;  // users restricted to loopback (guest) may log in

  std::string peer() const { return peer_host + ":" + std::to_string(peer_port); }
  std::string name() const { return peer() + " -> " + local_host + ":" + std::to_string(local_port); }

  // Reads them from an accepted socket, and turns Nagle off on it: replies are already batched
  // per event-loop turn, and a lone reply must not wait for an ack.
  static SocketEnds of(boost::asio::ip::tcp::socket& s) {
    namespace ip = boost::asio::ip;
    SocketEnds e;
    boost::system::error_code ec;
    auto peer = s.remote_endpoint(ec);
    if (!ec) {
      const ip::address& a = peer.address();
      e.peer_host = a.to_string();
      e.peer_port = peer.port();
      // An IPv4 client on an IPv6 socket is a v4-mapped address: loopback if its IPv4 one is.
      e.peer_is_loopback =
          a.is_loopback() || (a.is_v6() && a.to_v6().is_v4_mapped() &&
                              ip::make_address_v4(ip::v4_mapped, a.to_v6()).is_loopback());
    }
    auto local = s.local_endpoint(ec);
    if (!ec) {
      e.local_host = local.address().to_string();
      e.local_port = local.port();
    }
    s.set_option(ip::tcp::no_delay(true), ec);
    return e;
  }
};

}  // namespace warren
