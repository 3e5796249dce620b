#include "perf/connection.h"

#include <cstring>

#include "common/field_table.h"

namespace warren::perf {

namespace amqp = warren::amqp;
using boost::system::error_code;

namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr uint32_t kHandshakeMaxPayload = 1024 * 1024;

bool has_token(std::string_view list, std::string_view token) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(' ', pos);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(pos, end - pos) == token) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

std::string describe_close(uint16_t code, std::string_view text, uint16_t class_id,
                           uint16_t method_id) {
  std::string s = std::to_string(code) + " " + std::string(text);
  if (class_id != 0) {
    std::string_view name = amqp::method_name(class_id, method_id);
    s += " (in reply to ";
    s += name.empty() ? std::to_string(class_id) + "." + std::to_string(method_id) : std::string(name);
    s += ")";
  }
  return s;
}

// Connection-class methods (and channel.close) arriving from the server.
struct ConnectionMethods {
  Connection& c;
  void on(const amqp::ConnectionStart& m) { c.on_start(m); }
  void on(const amqp::ConnectionTune& m) { c.on_tune(m); }
  void on(const amqp::ConnectionSecure&) {
    c.fail("server sent connection.secure: only PLAIN authentication is supported");
    c.end();
  }
  void on(const amqp::ConnectionOpenOk&) {
    if (c.state_ == Connection::State::kOpening) c.state_ = Connection::State::kOpen;
  }
  void on(const amqp::ConnectionClose& m) { c.on_server_close(m); }
  void on(const amqp::ConnectionCloseOk&) { c.end(); }
  template <class M>
  void on(const M&) {
    c.fail("unexpected " + std::string(M::kName) + " from server");
    c.begin_close();
  }
  void on_unknown_method(uint16_t, uint16_t) {}  // e.g. connection.blocked: not needed here
  void on_malformed_method(uint16_t class_id, uint16_t method_id, std::string_view) {
    c.fail("malformed " + std::string(amqp::method_name(class_id, method_id)) + " from server");
    c.begin_close();
  }
};

Connection::Connection(ConnParams params)
    : params_(std::move(params)),
      io_(1),
      socket_(io_),
      heartbeat_timer_(io_),
      close_timer_(io_),
      rbuf_(kReadBuffer) {
  out_.reserve(128 * 1024);
  inflight_.reserve(128 * 1024);
}

Connection::~Connection() {
  error_code ec;
  socket_.close(ec);
}

template <class Pred>
bool Connection::wait(Pred done, Clock::time_point deadline, std::string_view what) {
  while (!done()) {
    if (ended_ || failed_) return false;
    if (io_.stopped()) io_.restart();
    io_.run_one_until(deadline);
    if (!done() && Clock::now() >= deadline) {
      fail("timed out waiting for " + std::string(what));
      end();
      return false;
    }
  }
  return true;
}

bool Connection::wait_reply(Clock::time_point deadline, std::string_view what) {
  return wait([this] { return reply_ready_; }, deadline, std::string(what) + " reply");
}

bool Connection::open(Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  asio::ip::tcp::resolver resolver(io_);
  error_code ec;
  auto endpoints = resolver.resolve(params_.host, std::to_string(params_.port), ec);
  if (ec) {
    fail("cannot resolve " + params_.host + ": " + ec.message());
    end();
    return false;
  }
  asio::async_connect(socket_, endpoints,
                      [this](const error_code& ec, const asio::ip::tcp::endpoint&) {
                        if (ended_) return;
                        if (ec) {
                          fail("cannot connect to " + params_.host + ":" +
                               std::to_string(params_.port) + ": " + ec.message());
                          end();
                          return;
                        }
                        connected_ = true;
                      });
  if (!wait([this] { return connected_; }, deadline, "the TCP connection")) return false;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (params_.tls) {
    tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls_context_->set_verify_mode(asio::ssl::verify_none);
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
    bool shaken = false;
    tls_->async_handshake(asio::ssl::stream_base::client, [this, &shaken](const error_code& ec) {
      if (ec) {
        fail("TLS handshake failed: " + ec.message());
        end();
        return;
      }
      shaken = true;
    });
    if (!wait([&shaken] { return shaken; }, deadline, "the TLS handshake")) return false;
  }

  state_ = State::kStart;
  out_.append(amqp::kProtocolHeader);
  flush();
  start_read();
  if (!wait([this] { return state_ == State::kOpen; }, deadline, "the AMQP handshake")) {
    return false;
  }
  return call(amqp::ChannelOpen{}, amqp::ChannelOpenOk::kId,
              std::max<Clock::duration>(deadline - Clock::now(), 1s));
}

void Connection::on_start(const amqp::ConnectionStart& m) {
  if (state_ != State::kStart) {
    fail("unexpected connection.start");
    end();
    return;
  }
  if (!has_token(m.mechanisms, "PLAIN")) {
    fail("server does not offer PLAIN authentication (offers: " + std::string(m.mechanisms) + ")");
    end();
    return;
  }
  FieldTable caps;
  caps.set("publisher_confirms", true);
  caps.set("basic.nack", true);
  caps.set("consumer_cancel_notify", true);
  caps.set("exchange_exchange_bindings", true);
  caps.set("per_consumer_qos", true);
  caps.set("authentication_failure_close", true);
  FieldTable props;
  props.set("product", "warren-perf");
  props.set("version", "0.1.0");
  props.set("platform", "C++20 / Boost.Asio");
  props.set("information", "Warren load generator");
  props.set("capabilities", std::move(caps));
  if (!params_.name.empty()) props.set("connection_name", std::string_view(params_.name));
  std::string client_properties = encode_table_body(props);
  std::string response;
  response.push_back('\0');
  response += params_.user;
  response.push_back('\0');
  response += params_.password;

  amqp::ConnectionStartOk ok;
  ok.client_properties = client_properties;
  ok.mechanism = "PLAIN";
  ok.response = response;
  ok.locale = "en_US";
  amqp::write_method(out_, 0, ok);
  flush();
  state_ = State::kTune;
}

void Connection::on_tune(const amqp::ConnectionTune& m) {
  if (state_ != State::kTune) {
    fail("unexpected connection.tune");
    end();
    return;
  }
  uint32_t fm = m.frame_max;
  if (params_.frame_max != 0) fm = fm == 0 ? params_.frame_max : std::min(fm, params_.frame_max);
  frame_max_ = fm;
  heartbeat_ = params_.heartbeat;
  amqp::ConnectionTuneOk ok;
  ok.channel_max = m.channel_max;
  ok.frame_max = fm;
  ok.heartbeat = heartbeat_;
  amqp::write_method(out_, 0, ok);
  amqp::ConnectionOpen open;
  open.virtual_host = params_.vhost;
  amqp::write_method(out_, 0, open);
  flush();
  state_ = State::kOpening;
  if (heartbeat_ > 0) arm_heartbeat();
}

void Connection::on_server_close(const amqp::ConnectionClose& m) {
  fail("server closed the connection: " +
       describe_close(m.reply_code, m.reply_text, m.class_id, m.method_id));
  if (closing_ == Closing::kAfterFlush) return;
  // Everything else queued is pointless now; answer close-ok and end once it is written.
  out_.clear();
  amqp::write_method(out_, 0, amqp::ConnectionCloseOk{});
  closing_ = Closing::kAfterFlush;
  flush();
  arm_close_timer();
}

void Connection::on_channel_close(const amqp::ChannelClose& m) {
  fail("server closed the channel: " +
       describe_close(m.reply_code, m.reply_text, m.class_id, m.method_id));
  amqp::write_method(out_, 1, amqp::ChannelCloseOk{});
  flush();
  begin_close();
}

void Connection::start_read() {
  if (rlen_ == rbuf_.size()) rbuf_.resize(rbuf_.size() * 2);
  auto buffer = asio::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_);
  auto handler = [this](const error_code& ec, size_t n) { on_read(ec, n); };
  if (tls_) tls_->async_read_some(buffer, handler);
  else socket_.async_read_some(buffer, handler);
}

void Connection::on_read(const error_code& ec, size_t n) {
  if (ended_) return;
  if (ec) {
    if (closing_ == Closing::kAwaitCloseOk && ec == asio::error::eof) {
      end();  // the server dropped the socket instead of sending close-ok: fine while closing
      return;
    }
    if (state_ != State::kOpen && ec == asio::error::eof) {
      fail("server closed the socket during the handshake (wrong credentials or vhost?)");
    } else {
      fail("connection lost: " + ec.message());
    }
    end();
    return;
  }
  read_ns_ = now_ns();
  rlen_ += n;
  uint32_t max_payload = state_ == State::kOpen || state_ == State::kOpening
                             ? (frame_max_ == 0 ? 0xffffffffu : frame_max_)
                             : kHandshakeMaxPayload;
  size_t off = 0;
  while (!ended_) {
    amqp::Frame f;
    size_t used = 0;
    std::string_view data(rbuf_.data() + off, rlen_ - off);
    auto st = amqp::parse_frame(data, max_payload, &f, &used);
    if (st == amqp::ParseStatus::kNeedMore) break;
    if (st != amqp::ParseStatus::kFrame) {
      fail(st == amqp::ParseStatus::kTooLarge ? "frame from server exceeds frame_max"
                                              : "bad frame end octet from server");
      end();
      return;
    }
    off += used;
    handle_frame(f);
  }
  if (ended_) return;
  if (off > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + off, rlen_ - off);
    rlen_ -= off;
  }
  if (rlen_ >= 7) {  // make room for a frame larger than the buffer
    Reader r(reinterpret_cast<const uint8_t*>(rbuf_.data()), rlen_);
    r.u8();
    r.u16();
    size_t need = size_t(r.u32()) + amqp::kFrameOverhead;
    if (need > rbuf_.size()) rbuf_.resize(need);
  }
  if (closing_ == Closing::kNo) on_read_done();
  if (!ended_) start_read();
}

void Connection::handle_frame(const amqp::Frame& f) {
  switch (f.type) {
    case amqp::kFrameMethod:
      handle_method(f.channel, f.payload);
      return;
    case amqp::kFrameHeader: {
      if (closing_ != Closing::kNo || f.channel != 1) return;
      Reader r(f.payload);
      r.u16();  // class
      r.u16();  // weight
      uint64_t size = r.u64();
      if (!r.ok()) {
        fail("malformed content header from server");
        begin_close();
        return;
      }
      on_header(size);
      return;
    }
    case amqp::kFrameBody:
      if (closing_ != Closing::kNo || f.channel != 1) return;
      on_body(f.payload);
      return;
    case amqp::kFrameHeartbeat:
      if (heartbeat_ > 0 && out_.empty() && !writing_) {
        amqp::write_heartbeat(out_);
        flush();
      }
      return;
    default:
      fail("unknown frame type " + std::to_string(f.type) + " from server");
      begin_close();
  }
}

void Connection::handle_method(uint16_t channel, std::string_view payload) {
  Reader r(payload);
  uint16_t class_id = r.u16();
  uint16_t method_id = r.u16();
  if (!r.ok()) {
    fail("truncated method frame from server");
    end();
    return;
  }
  uint32_t id = (uint32_t(class_id) << 16) | method_id;
  if (class_id == amqp::kConnectionClass) {
    if (channel != 0) {
      fail("connection method on channel " + std::to_string(channel));
      end();
      return;
    }
    if (closing_ != Closing::kNo && id != amqp::ConnectionClose::kId &&
        id != amqp::ConnectionCloseOk::kId) {
      return;
    }
    ConnectionMethods h{*this};
    amqp::dispatch_method(class_id, method_id, r, h);
    return;
  }
  if (closing_ != Closing::kNo || channel != 1) return;
  if (id == amqp::ChannelClose::kId) {
    amqp::ChannelClose m;
    if (!m.decode(r)) {
      fail("malformed channel.close from server");
      begin_close();
      return;
    }
    on_channel_close(m);
    return;
  }
  if (awaiting_ != 0 && id == awaiting_) {
    awaiting_ = 0;
    reply_.assign(reinterpret_cast<const char*>(r.position()), r.remaining());
    reply_ready_ = true;
    return;
  }
  on_method(class_id, method_id, r);
}

void Connection::flush() {
  if (writing_ || out_.empty() || ended_ || !connected_) return;
  writing_ = true;
  inflight_.swap(out_);
  auto written = [this](const error_code& ec, size_t) {
    writing_ = false;
    inflight_.clear();
    if (ended_) return;
    if (ec) {
      fail("write failed: " + ec.message());
      end();
      return;
    }
    if (heartbeat_ > 0) write_ns_ = now_ns();
    if (closing_ == Closing::kAfterFlush && out_.empty()) {
      end();
      return;
    }
    flush();
    if (closing_ == Closing::kNo) on_write_done();
  };
  if (tls_) asio::async_write(*tls_, asio::buffer(inflight_), written);
  else asio::async_write(socket_, asio::buffer(inflight_), written);
}

void Connection::arm_heartbeat() {
  auto period = std::chrono::milliseconds(std::max<int>(500, heartbeat_ * 1000 / 2));
  heartbeat_timer_.expires_after(period);
  heartbeat_timer_.async_wait([this, period](const error_code& ec) {
    if (ec || ended_) return;
    uint64_t now = now_ns();
    uint64_t period_ns = uint64_t(std::chrono::nanoseconds(period).count());
    if (read_ns_ != 0 && now - read_ns_ > 2 * uint64_t(heartbeat_) * 1'000'000'000ull) {
      fail("missed heartbeats from server");
      end();
      return;
    }
    if (now - write_ns_ >= period_ns && closing_ == Closing::kNo) {
      amqp::write_heartbeat(out_);
      flush();
    }
    arm_heartbeat();
  });
}

void Connection::arm_close_timer() {
  close_timer_.expires_after(3s);
  close_timer_.async_wait([this](const error_code& ec) {
    if (ec || ended_) return;
    end();
  });
}

void Connection::begin_close() {
  if (ended_ || closing_ != Closing::kNo) return;
  if (!connected_ || state_ == State::kConnecting) {
    end();
    return;
  }
  amqp::ConnectionClose m;
  m.reply_code = amqp::kReplySuccess;
  m.reply_text = "warren-perf done";
  amqp::write_method(out_, 0, m);
  closing_ = Closing::kAwaitCloseOk;
  flush();
  arm_close_timer();
}

void Connection::close(Clock::duration timeout) {
  if (ended_) return;
  begin_close();
  auto deadline = Clock::now() + timeout;
  while (!ended_) {
    if (io_.stopped()) io_.restart();
    io_.run_one_until(deadline);
    if (Clock::now() >= deadline) {
      end();
      break;
    }
  }
}

void Connection::fail(std::string message) {
  if (failed_) return;
  failed_ = true;
  error_ = std::move(message);
}

void Connection::end() {
  if (ended_) return;
  ended_ = true;
  error_code ec;
  heartbeat_timer_.cancel();
  close_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  io_.stop();
}

}  // namespace warren::perf
