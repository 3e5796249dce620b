#include "stomp/connection.h"

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "stomp/frame_parser.h"

namespace warren::stomp {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadBufferStart = 4096;
constexpr size_t kReadBufferQuiet = 64 << 10;  // an idle connection shrinks back below this

}  // namespace

Connection::Connection(std::unique_ptr<ByteStream> stream, broker::Broker& broker,
                       const Settings& settings)
    : stream_(std::move(stream)),
      broker_(broker),
      settings_(settings),
      id_(broker.next_connection_id()),
      connected_at_ms_(broker::wall_now_ms()),
      in_(kReadBufferStart, '\0'),
      // Owned by this connection alone (queues hold it weakly): its callback never outlives us.
      flow_(std::make_shared<broker::PublisherFlow>(broker.io(), id_, [this] { resume_reading(); })),
      session_(*this, settings_),
      heartbeat_timer_(stream_->executor()),
      login_timer_(stream_->executor()) {
  ends_ = SocketEnds::of(stream_->socket());
  peer_ = ends_.peer();
}

Connection::~Connection() = default;

void Connection::start() {
  last_recv_ = last_send_ = Clock::now();
  broker_.register_connection(shared_from_this());
  spdlog::debug("accepted STOMP connection {} from {}", id_, peer_);
  // As rabbit_stomp_reader's login_timeout: a client that has not logged in by then is dropped.
  login_timer_.expires_after(std::chrono::milliseconds(settings_.login_timeout_ms));
  login_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->session_.logged_in() && self->state_ == State::kRunning)
      self->close_socket("login timeout");
  });
  read_some();
}

void Connection::read_some() {
  if (state_ != State::kRunning || read_in_flight_ || reading_paused()) return;
  if (in_len_ == in_.size()) {
    // Full: a frame larger than the buffer makes room for itself, up to the frame size limit
    // (the parser refuses a larger one before the buffer gets there).
    in_.resize(std::min(in_.size() * 2, settings_.max_frame_size + kReadBufferStart));
  } else if (in_len_ == 0 && in_.size() > kReadBufferQuiet) {
    std::string(kReadBufferStart, '\0').swap(in_);
  }
  read_in_flight_ = true;
  stream_->async_read_some(
      asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        self->read_in_flight_ = false;
        if (ec) {
          if (self->state_ == State::kRunning)
            spdlog::debug("STOMP connection {} from {}: {}", self->id_, self->peer_, ec.message());
          self->close_socket("socket closed");
          return;
        }
        self->on_read(n);
      });
}

void Connection::on_read(size_t n) {
  if (n > 0) {
    in_len_ += n;
    traffic_.recv_oct += n;
    ++traffic_.recv_cnt;
    last_recv_ = Clock::now();
  }
  size_t pos = 0;
  while (state_ == State::kRunning && !reading_paused()) {
    Frame frame;
    size_t used = 0;
    std::string error;
    ParseStatus st = parse_frame(std::string_view(in_.data() + pos, in_len_ - pos),
                                 settings_.max_frame_size, &frame, &used, &error);
    if (st == ParseStatus::kMalformed) {
      // As RabbitMQ: logged, and the connection closed without an ERROR frame.
      spdlog::error("STOMP detected network error on connection {} from {}: {}", id_, peer_,
                    error);
      close_socket("malformed frame");
      return;
    }
    if (st == ParseStatus::kTooLarge) {
      spdlog::error("STOMP detected network error on connection {} from {}: frame_too_big "
                    "(limit {} bytes)", id_, peer_, settings_.max_frame_size);
      close_socket("frame too large");
      return;
    }
    pos += used;
    if (st == ParseStatus::kNeedMore) break;
    bool was_logged_in = session_.logged_in();
    AfterFrame after = session_.handle(frame);
    if (!was_logged_in && session_.logged_in()) after_login();
    if (after == AfterFrame::kCloseNow) {
      // What was answered before goes out; nothing more is read or answered.
      close_after_flush("unexpected frame");
      return;
    }
    if (after == AfterFrame::kCloseAfterFlush) {
      close_after_flush("closed by the session");
      return;
    }
  }
  if (state_ != State::kRunning) return;
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
  }
  read_some();
}

void Connection::after_login() {
  login_timer_.cancel();
  arm_heartbeat();
}

void Connection::resume_reading() {
  if (state_ != State::kRunning || read_in_flight_) return;
  // Frames already buffered are handled first; on_read re-arms the socket read.
  asio::post(stream_->executor(), [self = shared_from_this()] {
    if (!self->reading_paused() && !self->read_in_flight_ && self->state_ == State::kRunning)
      self->on_read(0);
  });
}

void Connection::alarms_cleared() {
  if (!memory_blocked_ || state_ == State::kClosed) return;
  memory_blocked_ = false;
  resume_reading();
}

// ---- heart-beats ----

void Connection::arm_heartbeat() {
  uint32_t send = session_.send_heartbeat_ms(), receive = session_.receive_heartbeat_ms();
  if (send == 0 && receive == 0) return;
  // Checked twice per sending interval (as rabbit_heartbeat), and at least once per receiving
  // one.
  uint32_t tick = send != 0 ? send / 2 : receive;
  if (receive != 0) tick = std::min(tick, receive);
  heartbeat_timer_.expires_after(std::chrono::milliseconds(std::max<uint32_t>(tick, 100)));
  heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_heartbeat_tick();
  });
}

void Connection::on_heartbeat_tick() {
  if (state_ == State::kClosed) return;
  auto now = Clock::now();
  uint32_t send = session_.send_heartbeat_ms(), receive = session_.receive_heartbeat_ms();
  // While reads are paused (flow control, an alarm) the client's heart-beats wait unread: that
  // time does not count against it.
  if (reading_paused()) last_recv_ = now;
  // rabbit_heartbeat times out after two checks without data: between 2 and 3 intervals.
  if (receive != 0 && now - last_recv_ > 2 * std::chrono::milliseconds(receive)) {
    spdlog::warn("STOMP detected missed client heartbeat(s) on connection {} from {}, closing it",
                 id_, peer_);
    close_socket("missed heartbeats");
    return;
  }
  if (send != 0 && state_ == State::kRunning && out().empty() && !output_.writing() &&
      now - last_send_ >= std::chrono::milliseconds(send / 2)) {
    out().push_back('\n');
    write_now();
  }
  arm_heartbeat();
}

// ---- output ----

void Connection::output_added() {
  if (!flush_scheduled) broker_.schedule_flush(shared_from_this());
}

void Connection::confirm_pending() {
  receipts_pending_ = true;
  output_added();
}

void Connection::flush_output() {
  if (receipts_pending_) {
    receipts_pending_ = false;
    if (state_ != State::kClosed) session_.write_receipts();
  }
  write_now();
}

void Connection::write_now() {
  if (!output_.ready_to_write() || state_ == State::kClosed) return;
  bool was_blocked = output_blocked();
  bool was_capped = out().size() >= broker_.limits().output_hard_cap;
  std::string_view data = output_.start_write();
  last_send_ = Clock::now();
  stream_->async_write(asio::buffer(data.data(), data.size()),
                       [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                         self->output_.write_done(n);
                         self->traffic_.send_oct += n;
                         ++self->traffic_.send_cnt;
                         if (ec) {
                           self->close_socket("write failed");
                           return;
                         }
                         if (!self->out().empty()) {
                           self->write_now();
                         } else if (self->close_when_flushed_) {
                           self->close_socket("flushed");
                         }
                       });
  if (was_capped) resume_reading();
  // Space freed: subscriptions skipped for a full socket may receive again.
  if (was_blocked) session_.request_dispatch_all();
}

// ---- closing ----

void Connection::close_after_flush(std::string_view why) {
  if (state_ != State::kRunning) return;
  spdlog::debug("STOMP connection {} from {}: closing ({})", id_, peer_, why);
  state_ = State::kClosing;
  session_.shutdown();
  flow_->stop();
  close_when_flushed_ = true;
  if (!output_.writing() && out().empty()) return close_socket(why);
  write_now();
  // A client that does not read its ERROR is not waited for long.
  heartbeat_timer_.expires_after(std::chrono::seconds(3));
  heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->close_socket("close timeout");
  });
}

void Connection::close_with_error(std::string_view message, std::string_view detail) {
  if (state_ != State::kRunning) return close_socket(message);
  write_frame(out(), "ERROR",
              {{"message", std::string(message)},
               {"content-type", "text/plain"},
               {"version", "1.0,1.1,1.2"}},
              detail);
  close_after_flush(message);
}

void Connection::force_close(std::string_view reason) {
  force_close_with_text(fmt::format("broker forced connection closure with reason '{}'", reason));
}

// The broker closed the connection (shutdown, vhost deleted): RabbitMQ's adapter reports its
// internal AMQP connection's 320 as an ERROR.
void Connection::force_close_with_text(std::string_view text) {
  close_with_error("connection_forced", fmt::format("CONNECTION_FORCED - {}", text));
}

void Connection::close_by_operator(std::string_view explanation) {
  close_with_error("connection_forced", fmt::format("CONNECTION_FORCED - {}", explanation));
}

void Connection::close_socket(std::string_view why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  // The registry may hold the last reference: keep this object alive until we return.
  auto keep_alive = shared_from_this();
  broker_.unregister_connection(this);
  session_.shutdown();
  flow_->stop();
  broker_.stop_waiting_for_journal(&session_);
  heartbeat_timer_.cancel();
  login_timer_.cancel();
  stream_->close();
  spdlog::debug("STOMP connection {} from {} closed ({})", id_, peer_, why);
}

// ---- listings ----

std::string_view Connection::vhost_name() const {
  auto* self = const_cast<Connection*>(this);
  broker::VHost* v = self->session_.vhost();
  return v != nullptr ? std::string_view(v->name()) : std::string_view();
}

void Connection::sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) {
  traffic_.sample(now_ms, previous_ms);
  session_.stats().sample(now_ms, previous_ms, 0, 0, capacity);
}

broker::ConnectionInfo Connection::info() const {
  auto* self = const_cast<Connection*>(this);
  broker::ConnectionInfo i;
  i.id = id_;
  i.user = session_.user();
  i.vhost = std::string(vhost_name());
  i.peer_host = ends_.peer_host;
  i.peer_port = ends_.peer_port;
  i.host = ends_.local_host;
  i.port = ends_.local_port;
  i.state = state_ == State::kRunning ? (session_.logged_in() ? "running" : "starting") : "closing";
  i.protocol = std::string(stream_->is_websocket() ? "Web STOMP " : "STOMP ") + session_.version();
  i.client_name = "STOMP " + session_.version();
  i.auth_mechanism = "STOMP";
  i.heartbeat = static_cast<uint16_t>(session_.receive_heartbeat_ms() / 1000);
  i.channel_max = 1;
  i.connected_at_ms = connected_at_ms_;
  i.traffic = traffic_;
  i.channels.push_back(self->session_.info());
  return i;
}

}  // namespace warren::stomp
