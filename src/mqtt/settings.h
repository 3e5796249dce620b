// The MQTT adapter's settings: RabbitMQ's rabbitmq_mqtt application environment (its defaults,
// and the rabbitmq.conf keys mqtt.* that set them).
#pragma once

#include <cstdint>
#include <string>

namespace warren::mqtt {

struct Settings {
  std::string vhost = "/";              // mqtt.vhost: when the user name names none
  std::string exchange = "amq.topic";   // mqtt.exchange: where publishes go, subscriptions bind
  // mqtt.allow_anonymous: a CONNECT without credentials logs in as default_user (true in
  // RabbitMQ 3.x; guest may still connect from loopback only).
  bool allow_anonymous = true;
  std::string default_user = "guest";   // mqtt.default_user
  std::string default_pass = "guest";   // mqtt.default_pass
  uint16_t prefetch = 10;               // mqtt.prefetch: unacked QoS 1 deliveries per client
  // mqtt.subscription_ttl: x-expires of a persistent session's queue (0 = never expires).
  uint64_t subscription_ttl_ms = 86'400'000;
  bool ignore_colons_in_username = false;  // mqtt.ignore_colons_in_username
  // RabbitMQ 3.13's mqtt.max_packet_size_unauthenticated / _authenticated.
  uint32_t max_packet_size_unauthenticated = 65'536;
  uint32_t max_packet_size_authenticated = 268'435'455;
  uint32_t login_timeout_ms = 10'000;   // CONNECT must arrive within this
};

}  // namespace warren::mqtt
