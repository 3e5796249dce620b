// ByteStream over TLS (asio::ssl::stream), for MQTT and STOMP over TLS (mqtts, stomps) as
// RabbitMQ's listeners.ssl keys serve them. accept() runs the server handshake, bounded by the
// context's handshake timeout, before the protocol gets the stream.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/ssl/stream.hpp>

#include "common/byte_stream.h"
#include "net/tls_context.h"

namespace warren::net {

class TlsByteStream : public ByteStream {
 public:
  using Ready = std::function<void(std::unique_ptr<TlsByteStream>)>;
  // Handshakes; ready(stream) on success, else the socket is closed (and the failure logged).
  static void accept(boost::asio::ip::tcp::socket socket, TlsContext& tls, Ready ready);

  TlsByteStream(boost::asio::ip::tcp::socket socket, TlsContext& tls)
      : stream_(std::move(socket), tls.ssl()) {}
  boost::asio::any_io_executor executor() override { return stream_.get_executor(); }
  void async_read_some(boost::asio::mutable_buffer into, Handler h) override {
    stream_.async_read_some(into, std::move(h));
  }
  void async_write(boost::asio::const_buffer data, Handler h) override;
  void close() override;
  boost::asio::ip::tcp::socket& socket() override { return stream_.next_layer(); }
  std::optional<std::string> verified_peer_common_name() override;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& ssl() { return stream_; }

 private:
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
};

}  // namespace warren::net
