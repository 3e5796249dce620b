// MQTT connection: CONNECT (protocol level, credentials, vhost, client id, session state) as
// RabbitMQ 3.x's rabbit_mqtt_processor:process_connect answers it.
#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/vhost.h"
#include "common/random_id.h"
#include "broker/exchange.h"
#include "mqtt/connection.h"
#include "mqtt/login_vhost.h"
#include "mqtt/reason_code.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

namespace {

// A 5.0 CONNACK reason code as the 3.1.1 return code (RabbitMQ's
// connect_reason_code_to_return_code).
ConnackCode return_code_of(uint8_t code) {
  switch (code) {
    case reason::kUnsupportedProtocolVersion: return ConnackCode::kUnacceptableProtocolVersion;
    case reason::kClientIdentifierNotValid: return ConnackCode::kIdentifierRejected;
    case reason::kBadUserNameOrPassword: return ConnackCode::kBadUsernameOrPassword;
    case reason::kNotAuthorized:
    case reason::kQuotaExceeded: return ConnackCode::kNotAuthorized;
    default: return ConnackCode::kServerUnavailable;
  }
}

}  // namespace

bool Connection::refuse(uint8_t code, std::string_view why) {
  if (v5())
    write_connack5(out(), false, code, {});
  else
    write_connack(out(), false, return_code_of(code));
  close(why, false);
  return false;
}

bool Connection::on_connect(Connect c) {
  if (!supported_protocol(c.protocol_name, c.level))
    return refuse(reason::kUnsupportedProtocolVersion,
                  fmt::format("unsupported protocol {} level {}", c.protocol_name, c.level));
  level_ = c.level;
  if (v5() && c.properties.authentication_method)
    return refuse(reason::kBadAuthenticationMethod,
                  fmt::format("extended authentication (method '{}') is not supported",
                              *c.properties.authentication_method));
  // 5.0 lets a client without an id resume nothing: the server names it (and says so).
  if (c.client_id.empty() && !c.clean_session && !v5())
    return refuse(reason::kClientIdentifierNotValid, "an empty client id needs a clean session");
  const bool assigned_id = c.client_id.empty();
  client_id_ = assigned_id ? random_id("") : std::move(c.client_id);
  if (std::optional<uint8_t> refused = log_in(c)) return refuse(*refused, "login refused");
  if (v5() && c.will && c.will->qos == 2)  // Maximum QoS is 1
    return refuse(reason::kQosNotSupported, "a will with QoS 2");

  // The id is ours now: a connection that held it closes first (its queues are released
  // before ours are declared).
  if (Connection* previous = service_.claim(vhost_->name(), client_id_, this))
    previous->taken_over(!c.clean_session);
  registered_ = true;
  clean_session_ = c.clean_session;
  session_expiry_ms_ = session_expiry_of(c);
  will_ = std::move(c.will);
  keep_alive_ = c.keep_alive;
  uint16_t prefetch = service_.settings().prefetch;
  if (v5()) {
    const Properties& p = c.properties;
    max_packet_out_ = p.maximum_packet_size.value_or(UINT32_MAX);
    topic_alias_max_out_ =
        std::min(p.topic_alias_maximum.value_or(0), service_.settings().topic_alias_maximum);
    // The client's Receive Maximum caps the QoS 1 deliveries awaiting its PUBACK.
    prefetch = std::min(prefetch, p.receive_maximum.value_or(UINT16_MAX));
  }
  ++vhost_->open_connections;
  state_ = State::kRunning;  // from here on, close() releases the session
  deliveries_.set_prefetch(prefetch, false);
  cancel_delayed_will();
  std::optional<bool> session_present = prepare_session();
  if (!session_present) {
    if (v5())
      write_connack5(out(), false, reason::kImplementationSpecificError, {});
    else
      write_connack(out(), false, ConnackCode::kServerUnavailable);
    close("cannot set up the session", false);
    return false;
  }
  if (v5())
    write_connack5(out(), *session_present, reason::kSuccess, connack_properties(c, assigned_id));
  else
    write_connack(out(), *session_present, ConnackCode::kAccepted);
  output_added();
  start_keepalive();
  spdlog::debug("MQTT connection {} from {}:{}: protocol level {}, user '{}', vhost '{}', client "
                "id '{}', clean {}, session expiry {} ms, keepalive {} s",
                id_, ends_.peer_host, ends_.peer_port, level_, user_, vhost_->name(), client_id_,
                clean_session_, session_expiry_ms_, keep_alive_);
  return true;
}

uint64_t Connection::session_expiry_of(const Connect& c) const {
  const uint64_t max = service_.settings().max_session_expiry_ms;
  // 3.1.1: a clean session ends with the connection; a persistent one lasts as long as the
  // server keeps sessions (RabbitMQ 3.13 reads CleanSession=0 as Session Expiry 0xFFFFFFFF).
  if (!v5()) return c.clean_session ? 0 : max;
  const uint32_t requested = c.properties.session_expiry_interval.value_or(0);
  if (requested == UINT32_MAX) return max;  // "does not expire"
  return std::min<uint64_t>(uint64_t{requested} * 1000, max);
}

std::string Connection::connack_properties(const Connect&, bool assigned_id) const {
  const Settings& s = service_.settings();
  PropertyWriter w;
  // The interval granted, which may be less than asked for (MQTT 5.0 section 3.2.2.3.2).
  w.u32(PropertyId::kSessionExpiryInterval,
        session_expiry_ms_ == kNeverExpires
            ? UINT32_MAX
            : static_cast<uint32_t>(std::min<uint64_t>(session_expiry_ms_ / 1000, UINT32_MAX - 1)));
  if (assigned_id) w.string(PropertyId::kAssignedClientIdentifier, client_id_);
  w.u16(PropertyId::kTopicAliasMaximum, s.topic_alias_maximum);
  w.byte(PropertyId::kMaximumQos, 1);
  w.u32(PropertyId::kMaximumPacketSize, s.max_packet_size_authenticated);
  w.byte(PropertyId::kSharedSubscriptionAvailable, 0);
  return w.bytes();
}

void Connection::on_disconnect(const Disconnect& d) {
  if (d.properties.session_expiry_interval) {
    const uint32_t requested = *d.properties.session_expiry_interval;
    if (session_expiry_ms_ == 0 && requested != 0) {
      // A protocol error (MQTT 5.0 section 3.14.2.2.2); the client is gone already, so as
      // RabbitMQ the request is just ignored.
      spdlog::warn("MQTT connection {}: ignoring session expiry interval {} in DISCONNECT: it "
                   "was 0 in CONNECT", id_, requested);
    } else if (requested == 0) {
      session_expiry_ms_ = 0;  // the session ends now: release_resources deletes its queue
    } else {
      const uint64_t max = service_.settings().max_session_expiry_ms;
      session_expiry_ms_ =
          requested == UINT32_MAX ? max : std::min<uint64_t>(uint64_t{requested} * 1000, max);
      apply_session_expiry();
    }
  }
  // 0x04 "disconnect with will message" asks for the will; any other client reason code
  // (0x00 or an error) discards it, as RabbitMQ 3.13.
  close(fmt::format("client sent DISCONNECT (reason {:#04x})", d.reason),
        d.reason == reason::kDisconnectWithWill);
}

std::optional<uint8_t> Connection::log_in(const Connect& c) {
  const Settings& s = service_.settings();
  // Which credentials count, in RabbitMQ's order (rabbit_mqtt_processor:creds): a user name
  // with a non-empty password; else the certificate's name under mqtt.ssl_cert_login; else the
  // default user when anonymous logins are allowed.
  std::string name, password;
  bool by_certificate = false;
  // The certificate's name counts for the vhost whenever mqtt.ssl_cert_login is on, also for a
  // login with a password (as RabbitMQ's ssl_login_name).
  const std::optional<std::string> certificate_name =
      s.ssl_cert_login ? stream_->verified_peer_common_name() : std::nullopt;
  if (c.username || c.password) {
    if (!c.username || !c.password || c.password->empty()) {
      spdlog::warn("MQTT login failed from {}: {} provided without {}", ends_.peer_host,
                   c.username ? "user name" : "password", c.username ? "password" : "user name");
      return reason::kBadUserNameOrPassword;
    }
    name = *c.username;
    password = *c.password;
  } else if (certificate_name) {
    name = *certificate_name;
    by_certificate = true;
  } else if (s.allow_anonymous) {
    name = s.default_user;
    password = s.default_pass;
  } else {
    spdlog::warn("MQTT login failed from {}: no credentials provided", ends_.peer_host);
    return reason::kBadUserNameOrPassword;
  }
  LoginVhost login =
      login_vhost(name, certificate_name ? &*certificate_name : nullptr, ends_.local_port, s,
                  broker_.global_parameter(kPortToVhostMapping),
                  broker_.global_parameter(kCertificateToVhostMapping));
  spdlog::debug("MQTT connection {}: vhost '{}' picked by {}", id_, login.vhost, login.picked_by);
  broker::VHost* vhost = broker_.find_vhost(login.vhost);
  if (vhost == nullptr) {
    spdlog::warn("MQTT login failed for user '{}': vhost '{}' does not exist", login.user,
                 login.vhost);
    return reason::kBadUserNameOrPassword;
  }
  // A verified certificate is the proof (as AMQP's EXTERNAL): the user need only exist.
  if ((by_certificate ? broker_.users().find(login.user)
                      : broker_.users().authenticate(login.user, password)) == nullptr) {
    spdlog::warn("MQTT login failed for user '{}' from {}: invalid credentials", login.user,
                 ends_.peer_host);
    return reason::kBadUserNameOrPassword;
  }
  if (!ends_.peer_is_loopback && broker_.users().loopback_only(login.user)) {
    spdlog::warn("MQTT login failed for user '{}': this user's access is restricted to localhost",
                 login.user);
    return reason::kNotAuthorized;
  }
  if (!broker_.access_control().has_vhost_access(login.user, vhost->name())) {
    spdlog::warn("MQTT login failed for user '{}': virtual host '{}' access not allowed",
                 login.user, vhost->name());
    return reason::kNotAuthorized;
  }
  if (vhost->max_connections >= 0 &&
      vhost->open_connections >= static_cast<size_t>(vhost->max_connections)) {
    spdlog::warn("MQTT login failed for user '{}': vhost '{}' connection limit ({}) is reached",
                 login.user, vhost->name(), vhost->max_connections);
    return reason::kQuotaExceeded;
  }
  user_ = std::move(login.user);
  vhost_ = vhost;
  // The firehose's names for this client: RabbitMQ's MQTT plugin publishes and consumes on
  // channel 1 of a connection named after the socket.
  name_ = ends_.name();
  identity_ = broker::ClientIdentity{user_, name_, 1};
  return std::nullopt;
}

std::optional<bool> Connection::prepare_session() {
  const Qos both[] = {Qos::k0, Qos::k1};
  if (!clean_session_) {
    // Resume: consume the session's queues again, and recover its subscriptions from the
    // queues' bindings (so that UNSUBSCRIBE works after a reconnect).
    bool present = false;
    for (Qos qos : both) {
      if (vhost_->find_queue(queue_name(qos)) == nullptr) continue;
      if (ensure_queue(qos) == nullptr) return std::nullopt;
      present = true;
    }
    if (present) {
      recover_subscriptions();
      apply_session_expiry();
    }
    return present;
  }
  // A clean session starts empty: a persistent session left by this client id goes.
  for (Qos qos : both) {
    const std::string name = queue_name(qos);
    if (vhost_->find_queue(name) == nullptr) continue;
    if (broker_.check_access(user_, vhost_->name(), auth::Permission::kConfigure, "queue", name)) {
      spdlog::error("MQTT cannot start a clean session: `configure` permission missing for "
                    "queue '{}'", name);
      return std::nullopt;
    }
    auto deleted = vhost_->delete_queue(name, false, false, id_);
    if (!deleted) {
      spdlog::error("MQTT cannot delete the session queue '{}': {}", name, deleted.error().text);
      return std::nullopt;
    }
  }
  return false;
}

void Connection::apply_session_expiry() {
  if (session_expiry_ms_ == 0) return;  // the queues go when the connection does
  std::optional<FieldValue> expires;
  if (session_expiry_ms_ != kNeverExpires)
    expires = FieldValue(static_cast<int64_t>(session_expiry_ms_));
  for (Qos qos : {Qos::k0, Qos::k1}) {
    broker::Queue* q = vhost_->find_queue(queue_name(qos));
    if (q == nullptr || q->auto_delete()) continue;
    const FieldValue* now = q->options().arguments.find("x-expires");
    const std::optional<int64_t> current = now ? now->as_int() : std::nullopt;
    if (current == (expires ? expires->as_int() : std::nullopt)) continue;  // no store write
    if (broker::Status e = vhost_->set_queue_argument(*q, "x-expires", expires))
      spdlog::warn("MQTT connection {}: cannot set the session expiry of queue '{}': {}", id_,
                   q->name(), e->text);
  }
}

void Connection::recover_subscriptions() {
  broker::Exchange* x = vhost_->find_exchange(service_.settings().exchange);
  if (x == nullptr) return;
  for (uint8_t qos : {0, 1}) {
    const auto& consumer = consumers_[qos];
    if (!consumer || !consumer->queue) continue;
    // Only this queue's bindings are visited, however many clients are subscribed.
    x->for_each_binding_to(
        broker::Destination{consumer->queue.get(), nullptr}, [&](const broker::Binding& b) {
          Subscription sub;
          sub.qos = qos;
          if (const FieldValue* v = b.arguments.find(kSubscriptionOptionsArgument))
            if (const FieldTable* o = v->as_table()) {
              sub.with_options = true;
              auto number = [&](std::string_view key) {
                const FieldValue* f = o->find(key);
                return f != nullptr ? f->as_int().value_or(0) : 0;
              };
              auto flag = [&](std::string_view key) {
                const FieldValue* f = o->find(key);
                return f != nullptr && f->as_bool().value_or(false);
              };
              sub.id = static_cast<uint32_t>(number("id"));
              sub.no_local = flag("no-local");
              sub.retain_as_published = flag("retain-as-published");
              sub.retain_handling = static_cast<uint8_t>(number("retain-handling"));
              subscription_options_in_use_ |=
                  sub.id != 0 || sub.no_local || sub.retain_as_published;
            }
          subscriptions_[routing_key_to_topic(b.routing_key)] = sub;
        });
  }
}

}  // namespace warren::mqtt
