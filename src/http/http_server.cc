#include "http/http_server.h"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

namespace warren::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(60);
// Definitions of 100,000 queues are tens of megabytes; more is refused with 413.
constexpr uint64_t kBodyLimit = 256ull << 20;

// One client connection: read a request, answer it, repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket socket, std::shared_ptr<const Handler> handler)
      : stream_(std::move(socket)), handler_(std::move(handler)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      auto a = ep.address();
      peer_.loopback = a.is_loopback() ||
                       (a.is_v6() && a.to_v6().is_v4_mapped() &&
                        asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback());
    }
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdleTimeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->on_read(ec);
                      });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
      return;
    }
    response_ = {};
    if (ec) {  // malformed request, body too large: answer 400/413 and close
      response_.result(ec == bhttp::error::body_limit ? bhttp::status::payload_too_large
                                                      : bhttp::status::bad_request);
      response_.set(bhttp::field::content_type, "application/json");
      response_.body() = R"({"error":"bad_request","reason":")" + ec.message() + "\"}";
      response_.keep_alive(false);
    } else {
      request_ = parser_->release();
      version_ = request_.version();
      keep_alive_ = request_.keep_alive();
      response_.version(version_);
      response_.keep_alive(keep_alive_);
      Responder responder([self = shared_from_this()]() -> Finish {
        return [self](Response res) {
          res.version(self->version_);
          res.keep_alive(self->keep_alive_);
          self->response_ = std::move(res);
          self->write();
        };
      });
      (*handler_)(request_, peer_, response_, responder);
      if (responder.deferred()) return;
    }
    write();
  }

  void write() {
    request_ = {};  // a large body (definitions) is not kept while the connection idles
    response_.set(bhttp::field::server, "Warren");
    response_.prepare_payload();
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (wec || !self->response_.keep_alive()) {
                           self->close();
                           return;
                         }
                         self->read();
                       });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request request_;  // valid until its response is written (deferred handlers read it later)
  Response response_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::shared_ptr<const Handler> handler_;
  Peer peer_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                       Handler handler)
    : acceptor_(io),
      handler_(std::make_shared<const Handler>(std::move(handler))),
      retry_timer_(io) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  if (endpoint.protocol() == asio::ip::tcp::v6()) acceptor_.set_option(asio::ip::v6_only(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void HttpServer::start() { accept(); }

void HttpServer::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
  retry_timer_.cancel();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      std::make_shared<Session>(std::move(socket), handler_)->read();
      accept();
      return;
    }
    // Out of file descriptors: retry later instead of spinning.
    spdlog::warn("HTTP accept failed: {}; retrying in 100 ms", ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
  });
}

}  // namespace warren::http
