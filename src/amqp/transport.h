// A client connection's byte stream: a plain TCP socket, or TLS over one (amqps). The choice is
// made once, when the connection is accepted; each I/O call branches on it once, so the plain
// path costs one predictable branch and no allocation or virtual call.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

namespace warren::amqp {

class Transport {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using TlsStream = boost::asio::ssl::stream<Socket>;

  explicit Transport(Socket socket) : stream_(std::move(socket)) {}
  Transport(Socket socket, boost::asio::ssl::context& tls)
      : stream_(std::in_place_type<TlsStream>, std::move(socket), tls) {}

  bool is_tls() const { return std::holds_alternative<TlsStream>(stream_); }
  Socket& socket() {
    if (auto* s = std::get_if<Socket>(&stream_)) return *s;
    return std::get<TlsStream>(stream_).next_layer();
  }
  Socket::executor_type get_executor() { return socket().get_executor(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (auto* s = std::get_if<Socket>(&stream_)) [[likely]]
      s->async_read_some(buffers, std::forward<Handler>(handler));
    else
      std::get<TlsStream>(stream_).async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (auto* s = std::get_if<Socket>(&stream_)) [[likely]]
      boost::asio::async_write(*s, buffers, std::forward<Handler>(handler));
    else
      boost::asio::async_write(std::get<TlsStream>(stream_), buffers,
                               std::forward<Handler>(handler));
  }

  // The server side of the TLS handshake (only for a TLS transport).
  template <class Handler>
  void async_handshake(Handler&& handler) {
    std::get<TlsStream>(stream_).async_handshake(boost::asio::ssl::stream_base::server,
                                                 std::forward<Handler>(handler));
  }

  // The subject CN of the client's certificate when it sent one and it was verified (the user
  // name of the EXTERNAL mechanism, as rabbitmq_auth_mechanism_ssl's default
  // ssl_cert_login_from = common_name).
  std::optional<std::string> verified_peer_common_name();

  // Closes the socket. A TLS close_notify is not sent: the AMQP connection.close handshake has
  // already ended the session, and waiting on a peer's TLS shutdown could stall the close.
  void close() {
    boost::system::error_code ec;
    socket().shutdown(Socket::shutdown_both, ec);
    socket().close(ec);
  }

 private:
  std::variant<Socket, TlsStream> stream_;
};

}  // namespace warren::amqp
