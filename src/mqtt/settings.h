// The MQTT adapter's settings: RabbitMQ's rabbitmq_mqtt application environment (its defaults,
// and the rabbitmq.conf keys mqtt.* that set them).
#pragma once

#include <cstdint>
#include <string>

namespace warren::mqtt {

struct Settings {
  std::string vhost = "/";              // mqtt.vhost: when the user name names none
  std::string exchange = "amq.topic";   // mqtt.exchange: where publishes go, subscriptions bind
  // mqtt.allow_anonymous: a CONNECT without credentials logs in as default_user (and guest
  // still only from loopback). Off unless configured: RabbitMQ 3.x defaults it to true, but an
  // anonymous login is something an operator should choose.
  bool allow_anonymous = false;
  std::string default_user = "guest";   // mqtt.default_user
  std::string default_pass = "guest";   // mqtt.default_pass
  uint16_t prefetch = 10;               // mqtt.prefetch: unacked QoS 1 deliveries per client
  // The longest a session outlives its connection (the x-expires of its queue; UINT64_MAX = no
  // limit): mqtt.max_session_expiry_interval_seconds (RabbitMQ 3.13), or 3.x's
  // mqtt.subscription_ttl. A 3.1.1 persistent session gets this; a 5.0 one what it asks for, up
  // to this.
  uint64_t max_session_expiry_ms = 86'400'000;
  uint16_t topic_alias_maximum = 16;    // mqtt.topic_alias_maximum: aliases a 5.0 client may set
  bool ignore_colons_in_username = false;  // mqtt.ignore_colons_in_username
  // mqtt.ssl_cert_login: over TLS, a CONNECT without credentials logs in as the common name of
  // the client's verified certificate (no password), before any anonymous login.
  bool ssl_cert_login = false;
  // RabbitMQ 3.13's mqtt.max_packet_size_unauthenticated / _authenticated.
  uint32_t max_packet_size_unauthenticated = 65'536;
  uint32_t max_packet_size_authenticated = 268'435'455;
  uint32_t login_timeout_ms = 10'000;   // CONNECT must arrive within this
};

}  // namespace warren::mqtt
