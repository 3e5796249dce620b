// MQTT connection: the last will, published when the connection ends without a clean
// DISCONNECT; with 5.0's Will Delay Interval it waits in a queue of its own first.
#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/message.h"
#include "broker/vhost.h"
#include "mqtt/connection.h"
#include "mqtt/message_properties.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

namespace {

// The will queue outlives its message by this much, so the message is dead-lettered before the
// queue expires with the session (as RabbitMQ 3.13: the client can use the will to learn that
// the session ended).
constexpr uint64_t kWillBeforeSessionEndMs = 5;

}  // namespace

void Connection::publish_will() {
  if (!will_) return;
  Will w = std::move(*will_);
  will_.reset();
  Properties properties;
  if (!w.properties.empty()) {
    std::string_view raw = w.properties;
    decode_properties(&raw, PropertyContext::kWill, &properties);  // checked at CONNECT
  }
  const uint8_t qos = w.qos == 0 ? 0 : 1;
  const uint32_t delay_s = properties.will_delay_interval.value_or(0);
  // The will waits for its delay only while the session outlives the connection (MQTT 5.0
  // section 3.1.3.2.2: the delay or the session's end, whichever comes first).
  if (delay_s > 0 && session_expiry_ms_ > 0 && will_may_wait_) {
    schedule_will(w, properties, delay_s);
    return;
  }
  if (auto error = publish(w.topic, w.payload, qos, false, 0, v5() ? &properties : nullptr,
                           w.retain)) {
    spdlog::warn("MQTT connection {}: could not send last will: {}", id_, *error);
    return;
  }
  if (w.retain) retain(w.topic, qos, w.payload, v5() ? &properties : nullptr);
}

void Connection::schedule_will(const Will& w, const Properties& properties, uint32_t delay_s) {
  const Settings& s = service_.settings();
  const std::string name = will_queue_name();
  auto fail = [&](std::string_view why) {
    spdlog::warn("MQTT connection {}: cannot schedule the will of client '{}': {}", id_,
                 client_id_, why);
  };
  if (broker::Status e = broker_.check_access(user_, vhost_->name(), auth::Permission::kConfigure,
                                              "queue", name))
    return fail(e->text);
  if (broker::Status e = broker_.check_access(user_, vhost_->name(), auth::Permission::kWrite,
                                              "exchange", s.exchange))
    return fail(e->text);
  if (broker::Status e = broker_.check_topic_access(user_, vhost_->name(), s.exchange,
                                                    auth::Permission::kWrite,
                                                    topic_to_routing_key(w.topic), client_id_))
    return fail(e->text);
  // A queue without consumers whose only message expires after the delay and is dead-lettered
  // to the exchange under the will's topic; the queue itself goes with the session.
  broker::QueueDeclare d;
  d.name = name;
  d.durable = true;
  if (session_expiry_ms_ != kNeverExpires)
    d.arguments.set("x-expires", FieldValue(static_cast<int64_t>(session_expiry_ms_)));
  d.arguments.set("x-dead-letter-exchange", FieldValue(s.exchange));
  d.arguments.set("x-dead-letter-routing-key", FieldValue(topic_to_routing_key(w.topic)));
  if (auto declared = vhost_->declare_queue(d, id_); !declared)
    return fail(declared.error().text);
  uint64_t ttl_ms = uint64_t{delay_s} * 1000;
  if (session_expiry_ms_ != kNeverExpires)
    ttl_ms = std::min(ttl_ms, session_expiry_ms_ > kWillBeforeSessionEndMs
                                  ? session_expiry_ms_ - kWillBeforeSessionEndMs
                                  : 0);
  const uint8_t qos = w.qos == 0 ? 0 : 1;
  EncodedPublish encoded = publish_properties(qos, false, properties, static_cast<int64_t>(ttl_ms));
  broker::MessageRef msg = broker::Message::create("", name, encoded.raw, w.payload.size());
  msg->append_body(w.payload);
  // Persistent whatever the will's QoS, so that a restart does not lose it (as RabbitMQ).
  msg->delivery_mode = 2;
  msg->expiration_ms = encoded.expiration_ms;
  broker::PublishRequest request{std::move(msg), false, nullptr};
  request.publisher = &identity_;
  vhost_->publish(request);
  spdlog::debug("MQTT connection {}: will of client '{}' to topic '{}' sent in {} ms", id_,
                client_id_, w.topic, ttl_ms);
}

void Connection::cancel_delayed_will() {
  const std::string name = will_queue_name();
  if (vhost_->find_queue(name) == nullptr) return;
  if (auto deleted = vhost_->delete_queue(name, false, false, id_); !deleted)
    spdlog::warn("MQTT connection {}: cannot delete will queue '{}': {}", id_, name,
                 deleted.error().text);
}

}  // namespace warren::mqtt
