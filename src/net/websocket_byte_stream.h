// ByteStream over a WebSocket (Boost.Beast), for MQTT and STOMP over WebSocket as RabbitMQ's
// rabbitmq_web_mqtt and rabbitmq_web_stomp serve them: the server accepts the upgrade of a GET
// on one path (/ws) with the protocol's subprotocol (mqtt; v12.stomp...), then the protocol
// reads the binary (or text) messages' bytes as a stream and each write is one message.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/byte_stream.h"

namespace warren::net {

class WebSocketByteStream : public ByteStream {
 public:
  using Ready = std::function<void(std::unique_ptr<WebSocketByteStream>)>;
  // Reads the upgrade request; when its path is `path` and it offers one of `subprotocols`
  // (the first offered that is in the list is chosen), completes the handshake and calls
  // ready(stream). Anything else gets an HTTP error (404, 400) and the socket closes, except
  // that with any_subprotocol an unknown one is echoed (RabbitMQ's web MQTT accepts any).
  static void accept(boost::asio::ip::tcp::socket socket, std::string path,
                     std::vector<std::string> subprotocols, bool binary, Ready ready,
                     bool any_subprotocol = false);

  boost::asio::any_io_executor executor() override;
  void async_read_some(boost::asio::mutable_buffer into, Handler h) override;
  void async_write(boost::asio::const_buffer data, Handler h) override;
  void close() override;
  boost::asio::ip::tcp::socket& socket() override;
  bool is_websocket() const override { return true; }

  explicit WebSocketByteStream(boost::asio::ip::tcp::socket socket);
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket>& ws() { return ws_; }

 private:
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
};

}  // namespace warren::net
