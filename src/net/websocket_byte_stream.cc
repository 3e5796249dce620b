#include "net/websocket_byte_stream.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

namespace warren::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

// The handshake's state, kept alive by the asynchronous operations that use it.
struct Handshake : std::enable_shared_from_this<Handshake> {
  Handshake(boost::asio::ip::tcp::socket s, std::string p, std::vector<std::string> subs,
            bool bin, WebSocketByteStream::Ready r, bool any)
      : stream(std::make_unique<WebSocketByteStream>(std::move(s))),
        path(std::move(p)),
        subprotocols(std::move(subs)),
        binary(bin),
        any_subprotocol(any),
        ready(std::move(r)),
        timer(stream->executor()) {}

  void start() {
    // A client that does not finish the upgrade in time is dropped.
    timer.expires_after(std::chrono::seconds(10));
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->done) self->stream->close();
    });
    http::async_read(stream->socket(), buffer, request,
                     [self = shared_from_this()](boost::system::error_code ec, size_t) {
                       self->on_request(ec);
                     });
  }

  void refuse(http::status status, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(status, request.version());
    res->set(http::field::content_type, "text/plain");
    res->keep_alive(false);
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream->socket(), *res,
                      [self = shared_from_this(), res](boost::system::error_code, size_t) {
                        self->done = true;
                        self->timer.cancel();
                        self->stream->close();
                      });
  }

  void on_request(boost::system::error_code ec) {
    if (ec) {
      done = true;
      timer.cancel();
      stream->close();
      return;
    }
    if (request.target() != path) return refuse(http::status::not_found, "Not found\n");
    if (!websocket::is_upgrade(request))
      return refuse(http::status::bad_request, "WebSocket upgrade expected\n");
    // The first subprotocol the client offers that we speak.
    std::string offered(request[http::field::sec_websocket_protocol]);
    size_t start = 0;
    while (chosen.empty() && start <= offered.size()) {
      size_t end = offered.find(',', start);
      if (end == std::string::npos) end = offered.size();
      std::string one = offered.substr(start, end - start);
      one.erase(0, one.find_first_not_of(' '));
      one.erase(one.find_last_not_of(' ') + 1);
      for (const std::string& s : subprotocols)
        if (one == s) chosen = s;
      start = end + 1;
    }
    if (chosen.empty() && !offered.empty()) {
      if (!any_subprotocol)
        return refuse(http::status::bad_request, "unsupported WebSocket subprotocol\n");
      chosen = offered.substr(0, offered.find(','));
      chosen.erase(chosen.find_last_not_of(' ') + 1);
    }
    auto& ws = stream->ws();
    ws.binary(binary);
    ws.set_option(websocket::stream_base::decorator(
        [protocol = chosen](websocket::response_type& res) {
          if (!protocol.empty()) res.set(http::field::sec_websocket_protocol, protocol);
          res.set(http::field::server, "Warren");
        }));
    ws.async_accept(request, [self = shared_from_this()](boost::system::error_code ec) {
      self->done = true;
      self->timer.cancel();
      if (ec) {
        self->stream->close();
        return;
      }
      self->ready(std::move(self->stream));
    });
  }

  std::unique_ptr<WebSocketByteStream> stream;
  std::string path;
  std::vector<std::string> subprotocols;
  bool binary;
  bool any_subprotocol;
  WebSocketByteStream::Ready ready;
  boost::asio::steady_timer timer;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::string chosen;
  bool done = false;
};

}  // namespace

WebSocketByteStream::WebSocketByteStream(boost::asio::ip::tcp::socket socket)
    : ws_(std::move(socket)) {}

void WebSocketByteStream::accept(boost::asio::ip::tcp::socket socket, std::string path,
                                 std::vector<std::string> subprotocols, bool binary, Ready ready,
                                 bool any_subprotocol) {
  std::make_shared<Handshake>(std::move(socket), std::move(path), std::move(subprotocols), binary,
                              std::move(ready), any_subprotocol)
      ->start();
}

boost::asio::any_io_executor WebSocketByteStream::executor() { return ws_.get_executor(); }

void WebSocketByteStream::async_read_some(boost::asio::mutable_buffer into, Handler h) {
  ws_.async_read_some(into, std::move(h));
}

void WebSocketByteStream::async_write(boost::asio::const_buffer data, Handler h) {
  ws_.async_write(data, std::move(h));
}

void WebSocketByteStream::close() {
  boost::system::error_code ec;
  ws_.next_layer().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  ws_.next_layer().close(ec);
}

boost::asio::ip::tcp::socket& WebSocketByteStream::socket() { return ws_.next_layer(); }

}  // namespace warren::net
