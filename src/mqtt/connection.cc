// MQTT connection: socket I/O, packet framing, keep-alive and closing.
#include "mqtt/connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "broker/vhost.h"
#include "mqtt/reason_code.h"

namespace warren::mqtt {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Bulk reads grow the buffer up to this; a larger packet gets a buffer of its own size.
constexpr size_t kReadBufferMax = 256 * 1024;

}  // namespace

Connection::Connection(std::unique_ptr<ByteStream> stream, Service& service)
    : service_(service),
      broker_(service.broker()),
      stream_(std::move(stream)),
      id_(broker_.next_connection_id()),
      connected_at_ms_(broker::wall_now_ms()),
      flow_(std::make_shared<broker::PublisherFlow>(broker_.io(), id_,
                                                    [this] { resume_reading(); })),
      in_(kReadBufferMax),
      timer_(stream_->executor()) {
  ends_ = SocketEnds::of(stream_->socket());
}

Connection::~Connection() { broker_.stop_waiting_for_journal(this); }

void Connection::start() {
  last_recv_ = Clock::now();
  broker_.register_connection(shared_from_this());
  // A client that does not send CONNECT in time is dropped (RabbitMQ: login timeout).
  timer_.expires_after(std::chrono::milliseconds(service_.settings().login_timeout_ms));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->state_ == State::kConnecting) self->close("login timeout", false);
  });
  read_some();
}

bool Connection::reading_paused() const {
  return flow_->paused() || alarm_blocked_ || broker_.journal_backlogged() ||
         output_.out().size() >= broker_.limits().output_hard_cap;
}

void Connection::read_some() {
  if (state_ == State::kClosed || read_in_flight_ || reading_paused()) return;
  read_in_flight_ = true;
  size_t room = in_.prepare(in_len_, Clock::now());
  stream_->async_read_some(asio::buffer(in_.data() + in_len_, room),
                           [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            self->read_in_flight_ = false;
                            if (self->state_ == State::kClosed) return;
                            if (ec) {
                              self->close(ec == asio::error::eof ? "connection closed by client"
                                                                 : ec.message());
                              return;
                            }
                            self->on_read(n);
                          });
}

void Connection::resume_reading() {
  if (state_ == State::kClosed || read_in_flight_) return;
  // Packets already buffered are handled first; on_read re-arms the socket read.
  asio::post(stream_->executor(), [self = shared_from_this()] {
    if (!self->reading_paused() && !self->read_in_flight_ && self->state_ != State::kClosed)
      self->on_read(0);
  });
}

void Connection::on_read(size_t n) {
  in_len_ += n;
  if (n > 0) {
    traffic_.recv_oct += n;
    ++traffic_.recv_cnt;
    last_recv_ = Clock::now();
    in_.read(n, last_recv_);
  }
  size_t pos = 0;
  const Settings& settings = service_.settings();
  while (state_ != State::kClosed && !reading_paused()) {
    std::string_view data(in_.data() + pos, in_len_ - pos);
    FixedHeader h;
    HeaderStatus st = parse_fixed_header(data, &h);
    if (st == HeaderStatus::kNeedMore) break;
    if (st == HeaderStatus::kMalformed) {
      disconnect(reason::kMalformedPacket, "malformed packet header");
      return;
    }
    const uint32_t max = state_ == State::kRunning ? settings.max_packet_size_authenticated
                                                   : settings.max_packet_size_unauthenticated;
    if (h.remaining > max) {
      spdlog::warn("MQTT connection {} from {}:{}: packet of {} bytes is over the limit of {}",
                   id_, ends_.peer_host, ends_.peer_port, h.remaining, max);
      disconnect(reason::kPacketTooLarge, "packet too large");
      return;
    }
    const size_t total = h.header_size + static_cast<size_t>(h.remaining);
    if (data.size() < total) {
      // Make room for the whole packet (after moving what we have to the front).
      if (pos > 0) {
        std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
        in_len_ -= pos;
        pos = 0;
      }
      in_.fit(total, in_len_);
      break;
    }
    pos += total;
    if (!handle_packet(h, data.substr(h.header_size, h.remaining))) break;
  }
  if (state_ == State::kClosed) return;
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
  }
  read_some();
}

bool Connection::handle_packet(const FixedHeader& h, std::string_view body) {
  if (state_ == State::kConnecting) {
    if (h.type != PacketType::kConnect) {
      close("the first packet was not CONNECT", false);
      return false;
    }
    auto c = decode_connect(h, body);
    if (!c) {
      // A 5.0 client learns why (MQTT 5.0 section 4.13.1); the level byte tells us it is one.
      if (body.size() >= 7 && static_cast<uint8_t>(body[6]) == kLevel5) {
        write_connack5(out(), false, reason::kMalformedPacket, {});
      }
      close(c.error().text, false);
      return false;
    }
    return on_connect(std::move(*c));
  }
  auto malformed = [&](const PacketError& e) {
    disconnect(reason::kMalformedPacket, e.text);
    return false;
  };
  switch (h.type) {
    case PacketType::kPublish: {
      auto p = decode_publish(h, body, v5());
      if (!p) return malformed(p.error());
      return on_publish(*p);
    }
    case PacketType::kPuback: {
      auto a = decode_ack(h, body, v5());
      if (!a) return malformed(a.error());
      on_puback(a->packet_id, a->reason);
      return true;
    }
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: {
      // QoS 2 is downgraded to 1 in both directions (as RabbitMQ), so these acknowledge
      // nothing of ours; a well-formed one is ignored.
      auto a = decode_ack(h, body, v5());
      if (!a) return malformed(a.error());
      return true;
    }
    case PacketType::kSubscribe: {
      auto s = decode_subscribe(h, body, v5());
      if (!s) return malformed(s.error());
      on_subscribe(*s);
      return state_ != State::kClosed;
    }
    case PacketType::kUnsubscribe: {
      auto u = decode_unsubscribe(h, body, v5());
      if (!u) return malformed(u.error());
      on_unsubscribe(*u);
      return true;
    }
    case PacketType::kPingreq:
      if (auto e = check_empty(h, body)) return malformed(*e);
      write_pingresp(out());
      output_added();
      return true;
    case PacketType::kDisconnect: {
      auto d = decode_disconnect(h, body, v5());
      if (!d) return malformed(d.error());
      // 3.1.1: a clean DISCONNECT discards the will (section 3.14.4); 5.0 says by its reason.
      on_disconnect(*d);
      return false;
    }
    case PacketType::kConnect:  // a protocol violation (3.1.1 section 3.1.0)
      disconnect(reason::kProtocolError, "a second CONNECT");
      return false;
    default:
      disconnect(reason::kProtocolError, "a packet only a server sends");
      return false;
  }
}

void Connection::output_added() {
  if (!flush_scheduled) broker_.schedule_flush(shared_from_this());
}

bool Connection::output_blocked() const {
  return output_.out().size() >= broker_.limits().output_high_water;
}

void Connection::flush_output() {
  write_pubacks();
  write_now();
}

void Connection::write_now() {
  if (!output_.ready_to_write() || state_ == State::kClosed) return;
  const bool was_blocked = output_blocked();
  const bool was_capped = out().size() >= broker_.limits().output_hard_cap;
  std::string_view data = output_.start_write();
  stream_->async_write(asio::buffer(data.data(), data.size()),
                       [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                         self->output_.write_done(n);
                         self->traffic_.send_oct += n;
                         ++self->traffic_.send_cnt;
                         if (self->state_ == State::kClosed) return;
                         if (ec) {
                           self->close(ec.message());
                           return;
                         }
                         self->write_now();
                       });
  if (was_capped) resume_reading();
  if (was_blocked)  // space freed: consumers skipped for a full socket may receive again
    for (auto& c : consumers_)
      if (c && c->queue) c->queue->request_dispatch();
}

void Connection::start_keepalive() {
  timer_.cancel();
  if (keep_alive_ == 0) return;
  // Checked four times per interval; the client is dropped after 1.5 intervals of silence
  // (MQTT 3.1.1 section 3.1.2.10), as RabbitMQ.
  timer_.expires_after(std::chrono::milliseconds(keep_alive_ * 250));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->state_ == State::kClosed) return;
    auto now = Clock::now();
    // While we do not read the socket (flow control), its packets wait unread: not the
    // client's silence.
    if (self->reading_paused()) self->last_recv_ = now;
    if (now - self->last_recv_ > std::chrono::milliseconds(self->keep_alive_ * 1500)) {
      spdlog::info("MQTT connection {} from {}:{} (client id '{}'): keepalive timeout", self->id_,
                   self->ends_.peer_host, self->ends_.peer_port, self->client_id_);
      self->disconnect(reason::kKeepAliveTimeout, "keepalive timeout");
      return;
    }
    self->start_keepalive();
  });
}

void Connection::close(std::string_view why, bool send_will) {
  if (state_ == State::kClosed) return;
  const bool was_running = state_ == State::kRunning;
  spdlog::log(was_running ? spdlog::level::info : spdlog::level::debug,
              "MQTT connection {} from {}:{} (client id '{}') closing: {}", id_, ends_.peer_host,
              ends_.peer_port, client_id_, why);
  if (was_running && send_will) publish_will();
  release_resources();
  state_ = State::kClosed;
  timer_.cancel();
  // Whatever is still queued (a CONNACK refusing the login) goes out first when it can.
  if (output_.ready_to_write()) {
    std::string_view data = output_.start_write();
    stream_->async_write(asio::buffer(data.data(), data.size()),
                         [self = shared_from_this()](boost::system::error_code, size_t n) {
                           self->output_.write_done(n);
                           self->stream_->close();
                         });
  } else {
    stream_->close();
  }
  broker_.unregister_connection(this);
}

void Connection::disconnect(uint8_t code, std::string_view why, bool send_will) {
  if (v5() && state_ == State::kRunning) write_disconnect5(out(), code);
  close(why, send_will);
}

void Connection::force_close(std::string_view why) {
  disconnect(reason::kAdministrativeAction, why);
}

void Connection::taken_over(bool session_continues) {
  spdlog::warn("MQTT disconnecting client with duplicate id '{}'", client_id_);
  registered_ = false;  // the new connection holds the id now
  will_may_wait_ = session_continues;
  disconnect(reason::kSessionTakenOver, "another connection took over its client id");
}

void Connection::alarms_cleared() {
  if (!alarm_blocked_ || state_ == State::kClosed) return;
  alarm_blocked_ = false;
  resume_reading();
}

std::string_view Connection::vhost_name() const {
  return vhost_ != nullptr ? std::string_view(vhost_->name()) : std::string_view();
}

void Connection::sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) {
  deliveries_.stats().sample(now_ms, previous_ms, 0, 0, capacity);
}

broker::ConnectionInfo Connection::info() const {
  broker::ConnectionInfo i;
  i.id = id_;
  i.protocol = std::string(stream_->is_websocket() ? "Web MQTT " : "MQTT ") +
               (level_ == kLevel31 ? "3.1.0" : level_ == kLevel5 ? "5.0" : "3.1.1");
  i.user = user_;
  i.vhost = vhost_ != nullptr ? vhost_->name() : "";
  i.peer_host = ends_.peer_host;
  i.peer_port = ends_.peer_port;
  i.host = ends_.local_host;
  i.port = ends_.local_port;
  i.state = state_ == State::kRunning ? "running"
            : state_ == State::kClosed ? "closing"
                                       : "starting";
  i.client_name = client_id_;
  i.heartbeat = keep_alive_;
  i.channel_max = 1;
  i.connected_at_ms = connected_at_ms_;
  i.traffic = traffic_;
  auto props = std::make_shared<FieldTable>();
  props->set("product", FieldValue("MQTT client"));
  props->set("client_id", FieldValue(std::string_view(client_id_)));
  i.client_properties = std::move(props);
  return i;
}

}  // namespace warren::mqtt
