// A connection's byte transport as a protocol sees it: TCP, or WebSocket binary messages (MQTT
// and STOMP over WebSocket read the same bytes as over TCP). One virtual call per read or write
// batch, not per message. The handlers run on the stream's executor (the event loop).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace warren {

class ByteStream {
 public:
  using Handler = std::function<void(boost::system::error_code, size_t)>;
  virtual ~ByteStream() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  // At most one read and one write in flight at a time.
  virtual void async_read_some(boost::asio::mutable_buffer into, Handler h) = 0;
  virtual void async_write(boost::asio::const_buffer data, Handler h) = 0;
  virtual void close() = 0;
  // The TCP socket under it (addresses, options).
  virtual boost::asio::ip::tcp::socket& socket() = 0;
  virtual bool is_websocket() const { return false; }
  // TLS: the common name of the client's verified certificate (a login, see
  // net/peer_certificate.h); nothing otherwise.
  virtual std::optional<std::string> verified_peer_common_name() { return std::nullopt; }
};

}  // namespace warren
