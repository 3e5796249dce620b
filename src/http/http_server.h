// An HTTP/1.1 server on the broker's event loop (Boost.Beast): accepts connections, reads one
// request at a time (keep-alive), hands it to a handler and writes its response. The handler runs
// on the event loop, so it may use the broker directly; handlers that build large replies must
// keep each call short (see management_api.h).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace warren::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
// What a handler knows of the client besides its request.
struct Peer {
  bool loopback = false;  // for loopback_users (guest may only log in from localhost)
};
// Completes a deferred response: call it once, on the event loop. The session reads no further
// request until then; the function keeps the session alive.
using Finish = std::function<void(Response)>;
// Lets a handler answer after it returns (a long list built over several loop turns): a
// handler that calls later() leaves its Response unused and answers through the Finish. The
// Request it was given stays valid until then.
class Responder {
 public:
  explicit Responder(std::function<Finish()> make) : make_(std::move(make)) {}
  Finish later() {
    deferred_ = true;
    return make_();
  }
  bool deferred() const { return deferred_; }

 private:
  std::function<Finish()> make_;
  bool deferred_ = false;
};
using Handler = std::function<void(const Request&, const Peer&, Response&, Responder&)>;

class HttpServer {
 public:
  // Binds and listens; throws boost::system::system_error when it cannot (at start-up only).
  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint,
             Handler handler);
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void start();
  void stop();

 private:
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<const Handler> handler_;  // shared with sessions, which may outlive stop()
  boost::asio::steady_timer retry_timer_;
};

}  // namespace warren::http
