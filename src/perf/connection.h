// One AMQP 0-9-1 client connection with a single channel (1), driven by its own single-threaded
// io_context. Reads go into one large buffer and every whole frame in it is handled before the
// next read; writes are double-buffered: callers append frames to out() while the previous
// buffer is on the wire, and flush() hands the whole buffer to the kernel in one write.
//
// The same object serves a synchronous phase (open(), call(), close(): they run the io_context
// until the awaited reply arrives or a deadline passes) and an asynchronous phase (io().run()
// with subclass callbacks) used by producers and consumers.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <memory>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "amqp/frame.h"
#include "amqp/methods.h"
#include "common/wire.h"

namespace warren::perf {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

struct ConnParams {
  std::string host = "127.0.0.1";
  uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  uint32_t frame_max = 0;  // 0: accept the server's proposal
  uint16_t heartbeat = 0;  // seconds; 0: no heartbeats
  std::string name;        // connection_name client property
  bool tls = false;        // TLS without certificate verification (a benchmark, not a client)
};

class Connection {
 public:
  explicit Connection(ConnParams params);
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  asio::io_context& io() { return io_; }

  // TCP connect, protocol header, start/start-ok (PLAIN), tune/tune-ok, open, then channel.open
  // on channel 1. False (see error()) on any failure or when the deadline passes.
  bool open(Clock::duration timeout);

  // Sends m on channel 1 and waits for the method with id reply_id on channel 1; its argument
  // bytes are then in reply() until the next call. False on error, channel close or timeout.
  template <class M>
  bool call(const M& m, uint32_t reply_id, Clock::duration timeout = 30s) {
    if (ended_ || failed_) return false;
    amqp::write_method(out_, 1, m);
    awaiting_ = reply_id;
    reply_ready_ = false;
    flush();
    return wait_reply(Clock::now() + timeout, M::kName);
  }
  std::string_view reply() const { return reply_; }

  // Graceful synchronous close: connection.close, then wait (bounded) for close-ok.
  void close(Clock::duration timeout = 3s);
  // Asynchronous close for the running phase: sends connection.close; the connection ends when
  // close-ok arrives, the server drops the socket, or after a few seconds.
  void begin_close();

  bool failed() const { return failed_; }
  bool ended() const { return ended_; }
  const std::string& error() const { return error_; }
  uint32_t frame_max() const { return frame_max_; }

 protected:
  std::string& out() { return out_; }
  bool writing() const { return writing_; }
  bool closing() const { return closing_ != Closing::kNo; }
  // Starts writing out() unless a write is in flight (its completion flushes again).
  void flush();
  // Records the first error; the connection keeps running until end() or a close completes.
  void fail(std::string message);
  // Closes the socket and stops the io_context (run() returns).
  void end();

  // Time the last read completed: the receive time of every frame of that read.
  uint64_t read_ns() const { return read_ns_; }

  // Methods on channel 1 that are neither connection-class nor awaited replies nor channel.close.
  virtual void on_method(uint16_t class_id, uint16_t method_id, Reader& args) {}
  virtual void on_header(uint64_t body_size) {}
  virtual void on_body(std::string_view data) {}
  // After every frame of one read was handled.
  virtual void on_read_done() {}
  // After a write completed (out() may already be on its way if it was non-empty).
  virtual void on_write_done() {}

 private:
  enum class State { kConnecting, kStart, kTune, kOpening, kOpen };
  enum class Closing { kNo, kAwaitCloseOk, kAfterFlush };

  bool wait_reply(Clock::time_point deadline, std::string_view what);
  template <class Pred>
  bool wait(Pred done, Clock::time_point deadline, std::string_view what);
  void start_read();
  void on_read(const boost::system::error_code& ec, size_t n);
  void handle_frame(const amqp::Frame& f);
  void handle_method(uint16_t channel, std::string_view payload);
  void on_start(const amqp::ConnectionStart& m);
  void on_tune(const amqp::ConnectionTune& m);
  void on_server_close(const amqp::ConnectionClose& m);
  void on_channel_close(const amqp::ChannelClose& m);
  void arm_heartbeat();
  void arm_close_timer();

  friend struct ConnectionMethods;

  ConnParams params_;
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  // With params.tls: TLS over socket_ (reads and writes go through it).
  std::unique_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer close_timer_;

  State state_ = State::kConnecting;
  Closing closing_ = Closing::kNo;
  bool connected_ = false;
  bool failed_ = false;
  bool ended_ = false;
  std::string error_;

  uint32_t frame_max_ = 131072;
  uint16_t heartbeat_ = 0;

  std::vector<char> rbuf_;
  size_t rlen_ = 0;
  uint64_t read_ns_ = 0;
  uint64_t write_ns_ = 0;

  std::string out_;
  std::string inflight_;
  bool writing_ = false;

  uint32_t awaiting_ = 0;
  bool reply_ready_ = false;
  std::string reply_;
};

// "code TEXT - reason" style rendering of a close reason, with the failing method when known.
std::string describe_close(uint16_t code, std::string_view text, uint16_t class_id,
                           uint16_t method_id);

}  // namespace warren::perf
