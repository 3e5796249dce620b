// ByteStream over a plain TCP socket.
#pragma once

#include <boost/asio/write.hpp>

#include "common/byte_stream.h"

namespace warren::net {

class TcpByteStream : public ByteStream {
 public:
  explicit TcpByteStream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  boost::asio::any_io_executor executor() override { return socket_.get_executor(); }
  void async_read_some(boost::asio::mutable_buffer into, Handler h) override {
    socket_.async_read_some(into, std::move(h));
  }
  void async_write(boost::asio::const_buffer data, Handler h) override {
    boost::asio::async_write(socket_, data, std::move(h));
  }
  void close() override {
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  boost::asio::ip::tcp::socket& socket() override { return socket_; }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace warren::net
