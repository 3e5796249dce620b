#include "server/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace warren::server {

namespace asio = boost::asio;
namespace json = boost::json;
using stream = asio::local::stream_protocol;

void ControlReply::flush_rows() {
  if (rows.empty()) return;
  json::object o;
  o["rows"] = std::move(rows);
  rows = json::array();
  out += json::serialize(o);
  out += '\n';
}

void ControlReply::ok(std::string message) {
  flush_rows();
  json::object o;
  o["ok"] = message;
  out += json::serialize(o);
  out += '\n';
  finished = true;
  next = nullptr;
}

void ControlReply::error(std::string text, int exit_code, bool plain) {
  flush_rows();
  json::object o;
  o["error"] = text;
  o["exit"] = exit_code;
  if (plain) o["plain"] = true;
  out += json::serialize(o);
  out += '\n';
  finished = true;
  next = nullptr;
}

namespace {

// One client: reads request lines and answers each in turn.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  // A request line may be this long (a definitions file of a million objects fits); a longer
  // one ends the session instead of growing the buffer without bound.
  static constexpr size_t kMaxRequest = size_t{1} << 30;

  ControlSession(stream::socket socket, ControlContext& ctx)
      : socket_(std::move(socket)), ctx_(ctx), in_(kMaxRequest) {}

  void read() {
    asio::async_read_until(socket_, in_, '\n',
                           [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                             if (ec) return;
                             self->on_line(n);
                           });
  }

 private:
  void on_line(size_t n) {
    std::string line(asio::buffers_begin(in_.data()), asio::buffers_begin(in_.data()) + n);
    in_.consume(n);
    reply_ = ControlReply{};
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object() || !v.as_object().contains("verb")) {
      reply_.error("malformed request", 64);
    } else {
      run_control_verb(ctx_, v.as_object(), reply_);
      if (!reply_.finished && !reply_.next) reply_.ok();
    }
    write();
  }

  void write() {
    reply_.flush_rows();
    if (reply_.out.empty()) return step();
    writing_ = std::move(reply_.out);
    reply_.out.clear();
    asio::async_write(socket_, asio::buffer(writing_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec) return;
                        self->step();
                      });
  }

  // After a chunk is written: the next chunk runs in a later loop turn (post), so AMQP traffic
  // is served in between.
  void step() {
    if (reply_.finished) return read();
    if (!reply_.next) {
      reply_.ok();
      return write();
    }
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      auto next = std::move(self->reply_.next);
      self->reply_.next = nullptr;
      next(self->reply_);
      if (!self->reply_.finished && !self->reply_.next) self->reply_.ok();
      self->write();
    });
  }

  stream::socket socket_;
  ControlContext& ctx_;
  asio::streambuf in_;
  ControlReply reply_;
  std::string writing_;
};

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

}  // namespace

std::string node_name() { return "warren@" + host_name(); }

ControlServer::ControlServer(broker::Broker& broker, std::string data_dir)
    : ctx_{broker, data_dir, node_name()},
      socket_path_(data_dir),
      path_(socket_path_.full()),
      acceptor_(broker.io()) {}

ControlServer::~ControlServer() { stop(); }

bool ControlServer::start(std::string* error) {
  // The data directory lock is held: a socket file here is a crashed server's leftover.
  ::unlink(socket_path_.usable().c_str());
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  if (!ec) {
    // Created 0600 from the start (umask), not chmod-ed after a window where others could connect.
    mode_t old = ::umask(0177);
    acceptor_.bind(stream::endpoint(socket_path_.usable()), ec);
    ::umask(old);
  }
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on control socket " + path_ + ": " + ec.message();
    return false;
  }
  accept();
  return true;
}

void ControlServer::stop() {
  if (!acceptor_.is_open()) return;
  boost::system::error_code ec;
  acceptor_.close(ec);
  ::unlink(socket_path_.usable().c_str());
}

void ControlServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<ControlSession>(std::move(s), ctx_)->read();
    accept();
  });
}

}  // namespace warren::server
