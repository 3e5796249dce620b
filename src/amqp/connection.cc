#include "amqp/connection.h"

#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "amqp/channel.h"
#include "amqp/frame_errors.h"
#include "common/socket_ends.h"
#include "common/field_table.h"
#include "auth/user_store.h"

namespace warren::amqp {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// The most a busy connection reads per call (more when frame_max needs it).
constexpr size_t kReadBufferMax = 256 * 1024;

// connection.blocked / connection.unblocked are RabbitMQ extensions that the spec XML does not
// define, so they are encoded here in the generated structs' shape.
struct ConnectionBlocked {
  std::string_view reason;
  void encode(Writer& w) const {
    w.u16(kConnectionClass);
    w.u16(60);
    w.shortstr(reason);
  }
};
struct ConnectionUpdateSecretOk {
  void encode(Writer& w) const {
    w.u16(kConnectionClass);
    w.u16(71);
  }
};
constexpr uint32_t kUpdateSecretId = (uint32_t(kConnectionClass) << 16) | 70;
struct ConnectionUnblocked {
  void encode(Writer& w) const {
    w.u16(kConnectionClass);
    w.u16(61);
  }
};

const std::string& server_properties() {
  static const std::string encoded = [] {
    FieldTable caps;
    for (const char* c : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                          "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                          "authentication_failure_close", "per_consumer_qos", "direct_reply_to"})
      caps.set(c, true);
    FieldTable props;
    props.set("product", std::string("Warren"));
    props.set("version", std::string("0.1.0"));
    props.set("platform", std::string("C++20 / Boost.Asio"));
    props.set("copyright", std::string("Warren authors"));
    props.set("information", std::string("AMQP 0-9-1 broker compatible with RabbitMQ clients"));
    props.set("cluster_name", std::string("warren"));
    props.set("capabilities", std::move(caps));
    return encode_table_body(props);
  }();
  return encoded;
}

// RabbitMQ cuts reply texts that do not fit a short string to 252 bytes and "...".
std::string reply_text(std::string_view text) {
  if (text.size() <= 255) return std::string(text);
  return std::string(text.substr(0, 252)) + "...";
}

}  // namespace

namespace {
Transport make_transport(asio::ip::tcp::socket socket, TlsContext* tls) {
  if (tls != nullptr) return Transport(std::move(socket), tls->ssl());
  return Transport(std::move(socket));
}
}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, broker::Broker& broker, TlsContext* tls)
    : transport_(make_transport(std::move(socket), tls)),
      tls_(tls),
      broker_(broker),
      id_(broker.next_connection_id()),
      connected_at_ms_(broker::wall_now_ms()),
      channel_max_(broker.limits().channel_max),
      in_(std::max<size_t>(kReadBufferMax, broker.limits().frame_max + kFrameOverhead)),
      // The flow is owned by this connection alone (queues hold it weakly), so its callback
      // never outlives the connection.
      flow_(std::make_shared<broker::PublisherFlow>(broker.io(), id_, [this] { resume_reading(); })),
      heartbeat_timer_(transport_.get_executor()),
      close_timer_(transport_.get_executor()) {
  const SocketEnds ends = SocketEnds::of(transport_.socket());
  peer_ = ends.peer();
  peer_is_loopback_ = ends.peer_is_loopback;
  peer_host_ = ends.peer_host;
  peer_port_ = ends.peer_port;
  local_host_ = ends.local_host;
  local_port_ = ends.local_port;
  name_ = ends.name();
}

Connection::~Connection() = default;

void Connection::start() {
  last_recv_ = last_send_ = Clock::now();
  broker_.register_connection(shared_from_this());
  spdlog::debug("accepted AMQP connection {} from {}", id_, peer_);
  if (transport_.is_tls()) {
    start_tls_handshake();
    return;
  }
  start_amqp();
}

void Connection::start_tls_handshake() {
  // A client that does not finish the TLS handshake in time (one that sends nothing, or speaks
  // plain AMQP to the TLS port and waits) is dropped; others are not affected.
  heartbeat_timer_.expires_after(tls_->handshake_timeout());
  heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->state_ == State::kHeader && !self->tls_handshake_done_) {
      spdlog::warn("connection {} from {}: TLS handshake timed out", self->id_, self->peer_);
      self->close_socket("tls handshake timeout");
    }
  });
  transport_.async_handshake([self = shared_from_this()](boost::system::error_code ec) {
    if (self->state_ == State::kClosed) return;
    self->heartbeat_timer_.cancel();
    if (ec) {
      spdlog::warn("connection {} from {}: TLS handshake failed: {}", self->id_, self->peer_,
                   ec.message());
      self->close_socket("tls handshake failed");
      return;
    }
    self->tls_handshake_done_ = true;
    self->peer_cert_user_ = self->transport_.verified_peer_common_name();
    self->start_amqp();
  });
}

void Connection::start_amqp() {
  // A client that never finishes the handshake is dropped (RabbitMQ: handshake_timeout 10 s).
  close_timer_.expires_after(std::chrono::seconds(10));
  close_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->state_ != State::kRunning && self->state_ != State::kClosed) {
      spdlog::info("connection {} from {}: handshake timeout", self->id_, self->peer_);
      self->close_socket("82");
    }
  });
  read_some();
}

void Connection::read_some() {
  if (state_ == State::kClosed || read_in_flight_) return;
  if (reading_paused()) return;  // flow control: resume_reading() restarts
  read_in_flight_ = true;
  size_t room = in_.prepare(in_len_, Clock::now());
  transport_.async_read_some(
      asio::buffer(in_.data() + in_len_, room),
      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        self->read_in_flight_ = false;
        if (ec) {
          if (self->state_ != State::kClosed)
            spdlog::debug("connection {} from {}: {}", self->id_, self->peer_, ec.message());
          self->close_socket("99");
          return;
        }
        self->on_read(n);
      });
}

void Connection::on_read(size_t n) {
  in_len_ += n;
  if (n > 0) {
    traffic_.recv_oct += n;
    ++traffic_.recv_cnt;
  }
  last_recv_ = Clock::now();
  in_.read(n, last_recv_);
  size_t pos = 0;
  if (state_ == State::kHeader) {
    if (in_len_ < kProtocolHeader.size()) {
      if (std::memcmp(in_.data(), kProtocolHeader.data(), in_len_) == 0) return read_some();
      in_len_ = std::max(in_len_, kProtocolHeader.size());  // mismatch already visible
    }
    if (!handle_protocol_header()) return;
    pos = kProtocolHeader.size();
  }
  while (state_ != State::kClosed && !reading_paused()) {
    Frame f;
    size_t used = 0;
    // RabbitMQ forgives the 8 bytes of frame overhead (clients often get them wrong): a payload
    // may be as large as frame_max itself.
    uint32_t max_payload = frame_max_;
    std::string_view data(in_.data() + pos, in_len_ - pos);
    ParseStatus st = parse_frame(data, max_payload, &f, &used);
    if (st == ParseStatus::kNeedMore) break;
    // After these two we have lost track of where frames start: answer, then read nothing more.
    if (st == ParseStatus::kTooLarge) {
      Reader r(data);
      uint8_t type = r.u8();
      r.u16();
      close_with_error(frame_too_large(type, r.u32(), frame_max_));
      return;
    }
    if (st == ParseStatus::kBadFrameEnd) {
      // The octet after the 7-byte header and the payload.
      uint8_t end = static_cast<uint8_t>(data[7 + f.payload.size()]);
      close_with_error(bad_frame_end(f, end));
      return;
    }
    pos += used;
    if (!handle_frame(f)) break;
  }
  if (state_ == State::kClosed) return;
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
  }
  read_some();
}

bool Connection::handle_protocol_header() {
  if (std::memcmp(in_.data(), kProtocolHeader.data(), kProtocolHeader.size()) != 0) {
    // As RabbitMQ: answer with the protocol version we speak, then close.
    spdlog::info("connection {} from {}: unsupported protocol header, closing", id_, peer_);
    out_.assign(kProtocolHeader);
    close_after_flush_ = true;
    state_ = State::kClosing;
    write_now();
    return false;
  }
  state_ = State::kStartOk;
  send_start();
  return true;
}

void Connection::send_start() {
  write_method(out_, 0,
               ConnectionStart{0, 9, server_properties(),
                               peer_cert_user_ ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN",
                               "en_US"});
  write_now();
}

Channel* Connection::find_channel(uint16_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return nullptr;
  last_channel_id_ = id;
  last_channel_ = it->second.get();
  return last_channel_;
}

bool Connection::handle_frame(const Frame& f) {
  if (state_ == State::kClosing) {
    // After our connection.close only close-ok (or a crossing close) matters.
    if (f.type == kFrameMethod && f.channel == 0) {
      Reader r(f.payload);
      uint16_t c = r.u16(), m = r.u16();
      if (c == kConnectionClass && m == ConnectionCloseOk::kMethodId) {
        close_socket("180");
        return false;
      }
      if (c == kConnectionClass && m == ConnectionClose::kMethodId) {
        write_method(out_, 0, ConnectionCloseOk{});
        close_after_flush_ = true;
        write_now();
        return false;
      }
    }
    return true;
  }
  // The order of RabbitMQ's handle_frame: a channel other than 0 is not looked at before the
  // connection is open; then frames it cannot read (a heartbeat with a payload, an unknown type)
  // are frame errors on any channel; then what may not come on the channel is unexpected.
  if (f.channel != 0 && state_ != State::kRunning) {
    close_with_error(unexpected_frame(f));
    return false;
  }
  if (!well_formed(f)) {
    close_with_error(unknown_frame(f));
    return false;
  }
  if (f.channel != 0 && f.type != kFrameHeartbeat) return handle_channel_frame(f);
  if (f.channel == 0 && f.type == kFrameHeartbeat) return true;
  if (f.channel == 0 && f.type == kFrameMethod) {
    Reader r(f.payload);
    uint16_t c = r.u16(), m = r.u16();
    return handle_connection_method(c, m, r);
  }
  // Content on channel 0, a heartbeat on another channel.
  close_with_error(unexpected_frame(f));
  return false;
}

bool Connection::handle_connection_method(uint16_t class_id, uint16_t method_id, Reader& r) {
  uint32_t id = (uint32_t(class_id) << 16) | method_id;
  auto fail = [&](AmqpError e) {
    e.class_id = class_id;
    e.method_id = method_id;
    close_with_error(e);
    return false;
  };
  std::string_view args(reinterpret_cast<const char*>(r.position()), r.remaining());
  switch (check_arguments(class_id, method_id, args)) {
    case ArgumentsCheck::kMalformed:
      // RabbitMQ's reader does not expect its decoder to fail on connection methods: before the
      // connection is open it drops the socket, afterwards it answers with a bare 541.
      if (state_ != State::kRunning) {
        close_silently(fmt::format("cannot decode {}", method_name(class_id, method_id)));
      } else {
        close_with_error(AmqpError(kInternalError, std::string(reply_code_name(kInternalError))));
      }
      return false;
    case ArgumentsCheck::kBadUtf8:
      return fail(malformed_utf8());
    case ArgumentsCheck::kOk:
    case ArgumentsCheck::kUnknownMethod:
      break;
  }
  if (id == ConnectionClose::kId) {
    ConnectionClose m;
    if (m.decode(r))
      spdlog::debug("connection {} from {}: client closed the connection ({} {})", id_, peer_,
                    m.reply_code, m.reply_text);
    write_method(out_, 0, ConnectionCloseOk{});
    close_after_flush_ = true;
    state_ = State::kClosing;
    release_resources();
    write_now();
    return false;
  }
  if (id == ConnectionCloseOk::kId) {
    close_socket("246");
    return false;
  }
  switch (state_) {
    case State::kStartOk: {
      ConnectionStartOk m;
      if (id != ConnectionStartOk::kId)
        return fail(amqp_error(kCommandInvalid, "expected connection.start-ok, got {}",
                               method_name(class_id, method_id)));
      if (!m.decode(r)) return fail(amqp_error(kSyntaxError, "malformed connection.start-ok"));
      if (auto props = decode_table(m.client_properties)) {
        client_properties_ = std::make_shared<const FieldTable>(*props);
        if (const FieldValue* n = props->find("connection_name"))
          if (auto name = n->as_string()) client_name_ = std::string(*name);
        if (const FieldValue* caps = props->find("capabilities"))
          if (const FieldTable* t = caps->as_table())
          {
            if (const FieldValue* ccn = t->find("consumer_cancel_notify"))
              consumer_cancel_notify_ = ccn->as_bool().value_or(false);
            if (const FieldValue* cb = t->find("connection.blocked"))
              client_supports_blocked_ = cb->as_bool().value_or(false);
          }
      }
      // EXTERNAL is offered (and so accepted) only over TLS with a verified client
      // certificate, as rabbit_auth_mechanism_ssl:should_offer.
      if (m.mechanism != "PLAIN" && m.mechanism != "AMQPLAIN" &&
          !(m.mechanism == "EXTERNAL" && peer_cert_user_))
        return fail(amqp_error(kCommandInvalid, "unknown authentication mechanism '{}'",
                               m.mechanism));
      if (!authenticate(m.mechanism, m.response)) return false;
      auth_mechanism_ = m.mechanism;
      write_method(out_, 0, ConnectionTune{broker_.limits().channel_max,
                                           broker_.limits().frame_max, broker_.limits().heartbeat});
      write_now();
      state_ = State::kTuneOk;
      return true;
    }
    case State::kTuneOk: {
      ConnectionTuneOk m;
      if (id != ConnectionTuneOk::kId)
        return fail(amqp_error(kCommandInvalid, "expected connection.tune-ok, got {}",
                               method_name(class_id, method_id)));
      if (!m.decode(r)) return fail(amqp_error(kSyntaxError, "malformed connection.tune-ok"));
      // As RabbitMQ (validate_negotiated_integer_value): frame_max and channel_max may not exceed
      // what connection.tune offered, and 0 ("no limit") exceeds it; frame_max is at least 4096.
      // The heartbeat is the client's to choose. The refusal closes the socket (close_with_error).
      uint32_t server_max = broker_.limits().frame_max;
      if (m.frame_max != 0 && m.frame_max < kFrameMinSize)
        return fail(amqp_error(kNotAllowed,
                               "negotiated frame_max = {} is lower than the minimum allowed "
                               "value ({})", m.frame_max, kFrameMinSize));
      if (m.frame_max == 0 || m.frame_max > server_max)
        return fail(amqp_error(kNotAllowed,
                               "negotiated frame_max = {} is higher than the maximum allowed "
                               "value ({})", m.frame_max, server_max));
      uint16_t server_channels = broker_.limits().channel_max;
      if (m.channel_max == 0 || m.channel_max > server_channels)
        return fail(amqp_error(kNotAllowed,
                               "negotiated channel_max = {}{} is higher than the maximum allowed "
                               "value ({})", m.channel_max, m.channel_max == 0 ? " (no limit)" : "",
                               server_channels));
      frame_max_ = m.frame_max;
      channel_max_ = m.channel_max;
      heartbeat_ = m.heartbeat;
      state_ = State::kOpen;
      start_heartbeat();
      return true;
    }
    case State::kOpen: {
      ConnectionOpen m;
      if (id != ConnectionOpen::kId)
        return fail(amqp_error(kCommandInvalid, "expected connection.open, got {}",
                               method_name(class_id, method_id)));
      if (!m.decode(r)) return fail(amqp_error(kSyntaxError, "malformed connection.open"));
      // As rabbit_reader: the vhost exists, the user has permissions on it, it is under its
      // connection limit (the connection being opened not counted yet).
      broker::VHost* vhost = broker_.find_vhost(m.virtual_host);
      if (vhost == nullptr)
        return fail(amqp_error(kNotAllowed, "vhost {} not found", m.virtual_host));
      if (!broker_.access_control().has_vhost_access(user_, vhost->name()))
        return fail(amqp_error(kNotAllowed, "access to vhost '{}' refused for user '{}'",
                               vhost->name(), user_));
      if (vhost->max_connections >= 0 &&
          vhost->open_connections >= static_cast<size_t>(vhost->max_connections))
        return fail(amqp_error(kNotAllowed,
                               "access to vhost '{}' refused for user '{}': connection limit "
                               "({}) is reached",
                               vhost->name(), user_, vhost->max_connections));
      vhost_ = vhost;
      ++vhost_->open_connections;
      write_method(out_, 0, ConnectionOpenOk{});
      write_now();
      state_ = State::kRunning;
      close_timer_.cancel();
      spdlog::debug("connection {} from {}: user '{}' opened vhost '{}'", id_, peer_, user_,
                    vhost_->name());
      return true;
    }
    case State::kRunning:
      if (id == kUpdateSecretId) return update_secret(r);
      // connection.blocked/unblocked (10.60/10.61) are RabbitMQ extensions absent from the spec XML.
      if (id == ((uint32_t(kConnectionClass) << 16) | 60) ||
          id == ((uint32_t(kConnectionClass) << 16) | 61))
        return true;
      // A channel-class method on channel 0 is a channel error, other classes a command error.
      return fail(amqp_error(class_id == kConnectionClass ? kCommandInvalid : kChannelError,
                             "unexpected method {} on channel 0",
                             method_name(class_id, method_id).empty()
                                 ? std::string_view("unknown")
                                 : method_name(class_id, method_id)));
    default:
      return fail(amqp_error(kCommandInvalid, "unexpected method on channel 0"));
  }
}

// connection.update-secret (10.70), a RabbitMQ extension absent from the spec XML: new-secret
// (longstr), reason (shortstr). As RabbitMQ 3.10 with its internal user database, whose state
// cannot expire (rabbit_auth_backend_internal:state_can_expire() -> false): the secret is not
// checked and the answer is update-secret-ok (checked against RabbitMQ 3.10.8, which answers ok
// to a wrong password too). Backends that re-check a token would refuse here with 530 "New
// secret was refused by one of the backends".
bool Connection::update_secret(Reader& r) {
  r.longstr();
  std::string_view reason = r.shortstr();
  if (!r.ok()) {
    close_with_error(amqp_error(kSyntaxError, "malformed connection.update-secret"));
    return false;
  }
  spdlog::debug("connection {} from {}: user '{}' updated its secret ({})", id_, peer_, user_,
                reason);
  write_method(out_, 0, ConnectionUpdateSecretOk{});
  write_now();
  return true;
}

bool Connection::authenticate(std::string_view mechanism, std::string_view response) {
  const auth::User* user = nullptr;
  std::string name;
  if (mechanism == "EXTERNAL") {
    // The certificate names the user; it must exist, and no password is checked (the
    // internal backend's check_user_login with no credentials).
    name = *peer_cert_user_;
    user = broker_.users().find(name);
  } else {
    auto creds =
        mechanism == "PLAIN" ? auth::parse_plain(response) : auth::parse_amqplain(response);
    user = creds ? broker_.users().authenticate(creds->user, creds->password) : nullptr;
    name = creds ? creds->user : std::string();
  }
  std::string reason;
  if (user == nullptr) {
    reason = "invalid credentials";
  } else if (!peer_is_loopback_ && broker_.users().loopback_only(name)) {
    user = nullptr;
    reason = "user can only connect via localhost";
  }
  if (user == nullptr) {
    spdlog::warn("connection {} from {}: login of user '{}' refused ({}, mechanism {})", id_, peer_,
                 name, reason, mechanism);
    AmqpError e = amqp_error(kAccessRefused,
                             "Login was refused using authentication mechanism {}. For details "
                             "see the broker logfile.",
                             mechanism);
    write_method(out_, 0, ConnectionClose{e.code, e.text, 0, 0});
    close_after_flush_ = true;
    state_ = State::kClosing;
    write_now();
    return false;
  }
  user_ = user->name;
  return true;
}

bool Connection::handle_channel_frame(const Frame& f) {
  Channel* ch = channel(f.channel);
  // As RabbitMQ (create_channel in rabbit_reader.erl), channel_max limits how many channels are
  // open, not their numbers: any frame for a channel that is not open starts one, and is refused
  // only when channel_max channels are open already (those waiting for a close-ok included).
  if (ch == nullptr && channels_.size() >= channel_max_) {
    close_with_error(amqp_error(kNotAllowed,
                                "number of channels opened ({}) has reached the negotiated "
                                "channel_max ({})", channels_.size(), channel_max_));
    return false;
  }
  Reader r(f.payload);
  uint16_t class_id = 0, method_id = 0;
  if (f.type == kFrameMethod) {
    class_id = r.u16();
    method_id = r.u16();
    // RabbitMQ decodes a method as it arrives (on a closing channel too), unless the channel
    // waits for content: then any method is an unexpected frame (Channel::handle_method).
    // Skipped when the channel decodes the method right away and decoding checks the same
    // (method_checks_utf8): basic.publish and basic.ack are then read once, not twice.
    bool decoded_now = ch != nullptr && !ch->closing() && !ch->expecting_content() &&
                       !(class_id == kChannelClass && method_id == ChannelClose::kMethodId) &&
                       ((class_id == kBasicClass && (method_id == BasicPublish::kMethodId ||
                                                     method_id == BasicAck::kMethodId)) ||
                        !method_checks_utf8(class_id, method_id));
    if (!decoded_now && (ch == nullptr || !ch->expecting_content())) {
      std::string_view args = f.payload.substr(4);
      switch (check_arguments(class_id, method_id, args)) {
        case ArgumentsCheck::kMalformed:
          close_with_error(cannot_decode(class_id, method_id, args));
          return false;
        case ArgumentsCheck::kBadUtf8:
          close_with_error(malformed_utf8());
          return false;
        case ArgumentsCheck::kOk:
        case ArgumentsCheck::kUnknownMethod:  // the channel answers those
          break;
      }
    }
  }
  bool is_open = class_id == kChannelClass && method_id == ChannelOpen::kMethodId;
  bool is_close = class_id == kChannelClass && method_id == ChannelClose::kMethodId;
  bool is_close_ok = class_id == kChannelClass && method_id == ChannelCloseOk::kMethodId;
  if (ch == nullptr) {
    if (f.type != kFrameMethod) {
      close_with_error(amqp_error(kUnexpectedFrame,
                                  "expected method frame, got non method frame instead"));
      return false;
    }
    if (is_open) {
      channels_[f.channel] = std::make_unique<Channel>(*this, f.channel);
      write_method(out_, f.channel, ChannelOpenOk{});
      output_added();
      return true;
    }
    // RabbitMQ ignores a close-ok for a channel it already forgot.
    if (is_close_ok) return true;
    AmqpError e = amqp_error(kChannelError, "expected 'channel.open'");
    e.class_id = class_id;
    e.method_id = method_id;
    close_with_error(e);
    return false;
  }
  if (ch->closing()) {
    // Waiting for close-ok after we closed the channel: drop everything else.
    if (is_close_ok) {
      destroy_channel(f.channel);
    } else if (is_close) {
      write_method(out_, f.channel, ChannelCloseOk{});
      output_added();
      destroy_channel(f.channel);
    }
    return true;
  }
  Status st;
  if (f.type == kFrameMethod) {
    // channel.close in the middle of a message is an unexpected frame, as any other method.
    if (is_close && !ch->expecting_content()) {
      destroy_channel(f.channel);  // releases consumers, requeues unacked
      write_method(out_, f.channel, ChannelCloseOk{});
      output_added();
      return true;
    }
    st = ch->handle_method(class_id, method_id, r);
  } else if (f.type == kFrameHeader) {
    st = ch->handle_header(f.payload);
  } else {
    st = ch->handle_body(f.payload);
  }
  if (!st) return true;
  if (st->hard()) {
    close_with_error(*st);
    return false;
  }
  fail_channel(f.channel, *st);
  return true;
}

void Connection::fail_channel(uint16_t channel_id, const AmqpError& e) {
  Channel* ch = channel(channel_id);
  if (ch == nullptr || ch->closing() || state_ != State::kRunning) return;
  spdlog::debug("connection {}: closing channel {}: {}", id_, channel_id, e.text);
  ch->begin_close();
  write_method(out_, channel_id,
               ChannelClose{e.code, reply_text(e.text), e.class_id, e.method_id});
  output_added();
}

void Connection::hold_reading(bool hold) {
  if (hold) {
    ++reading_holds_;
  } else if (reading_holds_ > 0 && --reading_holds_ == 0) {
    resume_reading();
  }
}

void Connection::destroy_channel(uint16_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  std::erase(pending_confirms_, it->second.get());
  // Out of the map first: while the channel winds down, channel(id) already finds nothing.
  std::unique_ptr<Channel> doomed = std::move(it->second);
  channels_.erase(it);
  if (last_channel_id_ == id) last_channel_ = nullptr;
}

void Connection::close_with_error(const AmqpError& e) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  // Until tune-ok is accepted RabbitMQ sends no connection.close (a refused login aside, see
  // authenticate()); from connection.open on it does.
  if (state_ == State::kStartOk || state_ == State::kSecureOk || state_ == State::kTuneOk)
    return close_silently(e.text);
  spdlog::info("connection {} from {}: closing with {}", id_, peer_, e.text);
  write_method(out_, 0, ConnectionClose{e.code, reply_text(e.text), e.class_id, e.method_id});
  bool handshake = state_ != State::kRunning;
  state_ = State::kClosing;
  release_resources();
  if (handshake) close_after_flush_ = true;
  write_now();
  // Wait a little for the client's close-ok, then drop the socket regardless.
  close_timer_.expires_after(std::chrono::seconds(3));
  close_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->close_socket("449");
  });
}

void Connection::output_added() {
  if (!flush_scheduled) broker_.schedule_flush(shared_from_this());
}

void Connection::confirm_pending(Channel* ch) {
  if (std::find(pending_confirms_.begin(), pending_confirms_.end(), ch) == pending_confirms_.end())
    pending_confirms_.push_back(ch);
  output_added();
}

void Connection::flush_output() {
  for (Channel* ch : pending_confirms_) ch->write_confirms();
  pending_confirms_.clear();
  write_now();
}

void Connection::write_now() {
  if (write_in_flight_ || out_.empty() || state_ == State::kClosed) return;
  bool was_blocked = output_blocked();
  bool was_capped = out_.size() >= broker_.limits().output_hard_cap;
  writing_.swap(out_);
  write_in_flight_ = true;
  last_send_ = Clock::now();
  transport_.async_write(asio::buffer(writing_),
                    [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                      self->write_in_flight_ = false;
                      self->traffic_.send_oct += n;
                      ++self->traffic_.send_cnt;
                      self->writing_.clear();
                      // A burst's buffer goes once writes are small again (idle connections
                      // hold little); under load every write is large and it stays.
                      if (self->writing_.capacity() > (64u << 10) &&
                          n < self->writing_.capacity() / 8)
                        std::string().swap(self->writing_);
                      if (ec) {
                        self->close_socket("481");
                        return;
                      }
                      if (!self->out_.empty()) {
                        self->write_now();
                      } else if (self->close_after_flush_) {
                        self->close_socket("487");
                      }
                    });
  if (was_capped) resume_reading();
  if (was_blocked) {
    // Space freed: consumers skipped for a full socket may receive again.
    for (auto& [id, ch] : channels_)
      if (ch) ch->request_dispatch_all();
  }
}

void Connection::start_heartbeat() {
  if (heartbeat_ == 0) return;
  heartbeat_timer_.expires_after(std::chrono::milliseconds(heartbeat_ * 500));
  heartbeat_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_heartbeat_tick();
  });
}

void Connection::on_heartbeat_tick() {
  if (state_ == State::kClosed) return;
  auto now = Clock::now();
  auto interval = std::chrono::seconds(heartbeat_);
  // While we do not read the socket (flow control, memory alarm), its heartbeats wait unread:
  // as RabbitMQ, do not count that time against the client.
  if (reading_paused()) last_recv_ = now;
  if (now - last_recv_ > 2 * interval) {
    spdlog::info("connection {} from {}: missed heartbeats from client, timeout: {}s", id_, peer_,
                 heartbeat_);
    close_socket("512");
    return;
  }
  if (now - last_send_ >= interval / 2 && out_.empty() && !write_in_flight_) {
    write_heartbeat(out_);
    write_now();
  }
  start_heartbeat();
}

void Connection::release_resources() {
  if (resources_released_) return;
  resources_released_ = true;
  pending_confirms_.clear();
  flow_->stop();
  // Destroying a channel cancels its consumers and requeues its unacked messages.
  for (auto& [id, ch] : channels_) ch.reset();
  channels_.clear();
  last_channel_ = nullptr;  // may have cached a channel while they were destroyed
  if (vhost_ != nullptr) {
    --vhost_->open_connections;
    vhost_->connection_closed(id_);
  }
}

void Connection::block_for_alarm(std::string_view reason) {
  if (memory_blocked_) return;
  memory_blocked_ = true;
  if (client_supports_blocked_) {
    write_method(out_, 0, ConnectionBlocked{reason});
    output_added();
  }
}

void Connection::alarms_cleared() {
  if (!memory_blocked_ || state_ == State::kClosed) return;
  memory_blocked_ = false;
  if (client_supports_blocked_) {
    write_method(out_, 0, ConnectionUnblocked{});
    output_added();
  }
  resume_reading();
}

void Connection::resume_reading() {
  if (state_ == State::kClosed || read_in_flight_) return;
  // Frames already buffered are handled first; on_read re-arms the socket read.
  asio::post(transport_.get_executor(), [self = shared_from_this()] {
    if (!self->reading_paused() && !self->read_in_flight_ && self->state_ != State::kClosed)
      self->on_read(0);
  });
}

std::string_view Connection::vhost_name() const {
  return vhost_ != nullptr ? std::string_view(vhost_->name()) : std::string_view();
}

void Connection::force_close(std::string_view reason) {
  force_close_with_text(fmt::format("broker forced connection closure with reason '{}'", reason));
}

void Connection::force_close_with_text(std::string_view text) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kHeader || state_ == State::kClosing) return close_socket("554");
  close_with_error(amqp_error(kConnectionForced, "{}", text));
  close_after_flush_ = true;
  if (!write_in_flight_ && out_.empty()) close_socket("558");
}

// As rabbitmqctl close_connection: the reply text is the explanation itself.
void Connection::close_by_operator(std::string_view explanation) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kHeader || state_ == State::kClosing) return close_socket("554");
  close_with_error(amqp_error(kConnectionForced, "{}", explanation));
  close_after_flush_ = true;
  if (!write_in_flight_ && out_.empty()) close_socket("558");
}

void Connection::close_silently(std::string_view why) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  spdlog::info("connection {} from {}: {}; closing the socket without connection.close", id_,
               peer_, why);
  state_ = State::kClosing;
  hold_reading(true);  // nothing more is read
  release_resources();
  // RabbitMQ first sleeps 3 s (SILENT_CLOSE_DELAY) to slow down clients that retry at once. We
  // close at once: the pause is no part of the protocol, and it would add 3 s to every
  // handshake error (test_fuzz_mutated_handshake ran 173 s of its 180 s limit with it).
  close_after_flush_ = true;
  if (write_in_flight_ || !out_.empty()) return write_now();
  close_socket("silent close");
}

void Connection::close_socket(const char* why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  // The registry may hold the last reference: keep this object alive until we return.
  auto keep_alive = shared_from_this();
  broker_.unregister_connection(this);
  release_resources();
  heartbeat_timer_.cancel();
  close_timer_.cancel();
  transport_.close();
  spdlog::debug("connection {} from {} closed ({})", id_, peer_, why);
}


void Connection::sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) {
  traffic_.sample(now_ms, previous_ms);
  for (const auto& [number, ch] : channels_) ch->sample_stats(now_ms, previous_ms, capacity);
}

broker::ConnectionInfo Connection::info() const {
  broker::ConnectionInfo i;
  i.id = id_;
  i.user = user_;
  i.vhost = vhost_ != nullptr ? vhost_->name() : "";
  i.peer_host = peer_host_;
  i.peer_port = peer_port_;
  i.host = local_host_;
  i.port = local_port_;
  i.state = state_ == State::kRunning ? "running"
            : (state_ == State::kClosing || state_ == State::kClosed) ? "closing"
                                                                      : "starting";
  i.client_name = client_name_;
  i.auth_mechanism = auth_mechanism_;
  i.ssl = transport_.is_tls();
  i.channel_max = channel_max_;
  i.frame_max = frame_max_;
  i.heartbeat = heartbeat_;
  i.connected_at_ms = connected_at_ms_;
  i.traffic = traffic_;
  i.client_properties = client_properties_;
  for (const auto& [number, ch] : channels_) i.channels.push_back(ch->info());
  return i;
}

}  // namespace warren::amqp
