// MQTT connection: CONNECT (protocol level, credentials, vhost, client id, session state) as
// RabbitMQ 3.x's rabbit_mqtt_processor:process_connect answers it.
#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/vhost.h"
#include "common/random_id.h"
#include "broker/exchange.h"
#include "mqtt/connection.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

namespace {

struct Login {
  std::string vhost;
  std::string user;
};

// The vhost and user a user name names: "vhost:user" (split at the last colon) unless
// mqtt.ignore_colons_in_username, else the configured vhost.
Login split_user_name(std::string_view name, const Settings& s) {
  if (!s.ignore_colons_in_username) {
    const size_t colon = name.rfind(':');
    if (colon != std::string_view::npos)
      return Login{std::string(name.substr(0, colon)), std::string(name.substr(colon + 1))};
  }
  return Login{s.vhost, std::string(name)};
}

}  // namespace

bool Connection::on_connect(Connect c) {
  auto refuse = [&](ConnackCode code, std::string_view why) {
    write_connack(out(), false, code);
    close(why, false);
    return false;
  };
  if (!((c.protocol_name == "MQTT" && c.level == kLevel311) ||
        (c.protocol_name == "MQIsdp" && c.level == kLevel31)))
    return refuse(ConnackCode::kUnacceptableProtocolVersion,
                  fmt::format("unsupported protocol {} level {}", c.protocol_name, c.level));
  level_ = c.level;
  if (c.client_id.empty() && !c.clean_session)
    return refuse(ConnackCode::kIdentifierRejected,
                  "an empty client id needs a clean session");
  client_id_ = c.client_id.empty() ? random_id("") : std::move(c.client_id);
  if (std::optional<ConnackCode> refused = log_in(c))
    return refuse(*refused, "login refused");

  // The id is ours now: a connection that held it closes first (its queues are released
  // before ours are declared).
  if (Connection* previous = service_.claim(vhost_->name(), client_id_, this))
    previous->taken_over();
  registered_ = true;
  clean_session_ = c.clean_session;
  will_ = std::move(c.will);
  keep_alive_ = c.keep_alive;
  ++vhost_->open_connections;
  state_ = State::kRunning;  // from here on, close() releases the session
  deliveries_.set_prefetch(service_.settings().prefetch, false);
  std::optional<bool> session_present = prepare_session();
  if (!session_present) {
    write_connack(out(), false, ConnackCode::kServerUnavailable);
    close("cannot set up the session", false);
    return false;
  }
  write_connack(out(), *session_present, ConnackCode::kAccepted);
  output_added();
  start_keepalive();
  spdlog::debug("MQTT connection {} from {}:{}: user '{}', vhost '{}', client id '{}', clean "
                "session {}, keepalive {} s",
                id_, ends_.peer_host, ends_.peer_port, user_, vhost_->name(), client_id_, clean_session_,
                keep_alive_);
  return true;
}

std::optional<ConnackCode> Connection::log_in(const Connect& c) {
  const Settings& s = service_.settings();
  std::string name, password;
  if (c.username && c.password) {
    name = *c.username;
    password = *c.password;
  } else if (c.username || c.password) {
    spdlog::warn("MQTT login failed from {}: {} provided without {}", ends_.peer_host,
                 c.username ? "user name" : "password", c.username ? "password" : "user name");
    return ConnackCode::kBadUsernameOrPassword;
  } else if (s.allow_anonymous) {
    name = s.default_user;
    password = s.default_pass;
  } else {
    spdlog::warn("MQTT login failed from {}: no credentials provided", ends_.peer_host);
    return ConnackCode::kBadUsernameOrPassword;
  }
  Login login = split_user_name(name, s);
  broker::VHost* vhost = broker_.find_vhost(login.vhost);
  if (vhost == nullptr) {
    spdlog::warn("MQTT login failed for user '{}': vhost '{}' does not exist", login.user,
                 login.vhost);
    return ConnackCode::kBadUsernameOrPassword;
  }
  if (broker_.users().authenticate(login.user, password) == nullptr) {
    spdlog::warn("MQTT login failed for user '{}' from {}: invalid credentials", login.user,
                 ends_.peer_host);
    return ConnackCode::kBadUsernameOrPassword;
  }
  if (!ends_.peer_is_loopback && broker_.users().loopback_only(login.user)) {
    spdlog::warn("MQTT login failed for user '{}': this user's access is restricted to localhost",
                 login.user);
    return ConnackCode::kNotAuthorized;
  }
  if (!broker_.access_control().has_vhost_access(login.user, vhost->name())) {
    spdlog::warn("MQTT login failed for user '{}': virtual host '{}' access not allowed",
                 login.user, vhost->name());
    return ConnackCode::kNotAuthorized;
  }
  if (vhost->max_connections >= 0 &&
      vhost->open_connections >= static_cast<size_t>(vhost->max_connections)) {
    spdlog::warn("MQTT login failed for user '{}': vhost '{}' connection limit ({}) is reached",
                 login.user, vhost->name(), vhost->max_connections);
    return ConnackCode::kNotAuthorized;
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
  const std::string qos1 = queue_name(Qos::k1);
  broker::Queue* existing = vhost_->find_queue(qos1);
  if (!clean_session_) {
    if (existing == nullptr) return false;
    // Resume: consume the session's queue again, and recover its subscriptions from the
    // queue's bindings (so that UNSUBSCRIBE works after a reconnect).
    if (ensure_queue(Qos::k1) == nullptr) return std::nullopt;
    if (broker::Exchange* x = vhost_->find_exchange(service_.settings().exchange))
      for (const broker::Binding& b : x->bindings())
        if (b.dest.queue == existing) subscriptions_[routing_key_to_topic(b.routing_key)] = 1;
    return true;
  }
  // A clean session starts empty: a persistent session left by this client id goes.
  if (existing != nullptr) {
    if (broker_.check_access(user_, vhost_->name(), auth::Permission::kConfigure, "queue", qos1)) {
      spdlog::error("MQTT cannot start a clean session: `configure` permission missing for "
                    "queue '{}'", qos1);
      return std::nullopt;
    }
    auto deleted = vhost_->delete_queue(qos1, false, false, id_);
    if (!deleted) {
      spdlog::error("MQTT cannot delete the session queue '{}': {}", qos1, deleted.error().text);
      return std::nullopt;
    }
  }
  return false;
}

}  // namespace warren::mqtt
