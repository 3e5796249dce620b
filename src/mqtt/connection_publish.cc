// MQTT connection: PUBLISH (topic aliases, retained messages) through VHost::publish, and the
// PUBACKs that follow the broker's confirms.
#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/message.h"
#include "broker/vhost.h"
#include "mqtt/connection.h"
#include "mqtt/message_properties.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

bool Connection::on_publish(const Publish& p) {
  std::string_view topic = p.topic;
  if (v5()) {
    if (p.qos == 2) {  // above the Maximum QoS of our CONNACK (MQTT 5.0 section 3.3.1.2)
      disconnect(reason::kQosNotSupported, "PUBLISH with QoS 2");
      return false;
    }
    auto resolved = resolve_topic_alias(p);
    if (!resolved) {
      disconnect(resolved.error(), "PUBLISH with an invalid topic alias");
      return false;
    }
    topic = *resolved;
  }
  const uint8_t qos = p.qos == 2 ? 1 : p.qos;  // QoS 2 is downgraded to 1, as RabbitMQ
  if (auto error = publish(topic, p.payload, qos, p.dup, p.packet_id,
                           v5() ? &p.properties : nullptr, p.retain)) {
    disconnect(reason::kNotAuthorized, *error);
    return false;
  }
  if (p.retain) retain(topic, qos, p.payload, v5() ? &p.properties : nullptr);
  return true;
}

void Connection::retain(std::string_view topic, uint8_t qos, std::string_view payload,
                        const Properties* properties) {
  std::string kept;
  uint64_t expires_at_ms = 0;
  if (properties != nullptr) {
    kept = retained_properties(*properties);
    if (properties->message_expiry_interval)
      expires_at_ms = broker::wall_now_ms() + uint64_t{*properties->message_expiry_interval} * 1000;
  }
  service_.retained().retain(vhost_->name(), topic, qos, payload, kept, expires_at_ms);
}

Result<std::string_view, uint8_t> Connection::resolve_topic_alias(const Publish& p) {
  if (!p.properties.topic_alias) return p.topic;
  const uint16_t alias = *p.properties.topic_alias;
  if (alias == 0 || alias > service_.settings().topic_alias_maximum)
    return reason::kTopicAliasInvalid;
  if (aliases_in_.size() < alias) aliases_in_.resize(alias);
  std::string& known = aliases_in_[alias - 1];
  if (p.topic.empty()) {
    if (known.empty()) return reason::kProtocolError;  // an alias never set
    return std::string_view(known);
  }
  known.assign(p.topic);
  return p.topic;
}

std::optional<std::string> Connection::publish(std::string_view topic, std::string_view payload,
                                               uint8_t qos, bool dup, uint16_t packet_id,
                                               const Properties* properties, bool retain) {
  const Settings& s = service_.settings();
  std::string key = topic_to_routing_key(topic);
  if (key.size() > 255) return "topic name longer than 255 bytes";
  // Write permission on the exchange, checked again only when permissions changed.
  const uint64_t generation = broker_.access_control().generation();
  if (generation != write_permitted_generation_) {
    if (broker::Status e = broker_.check_access(user_, vhost_->name(), auth::Permission::kWrite,
                                                "exchange", s.exchange))
      return "publish refused: " + e->text;
    write_permitted_generation_ = generation;
  }
  // Topic permissions on the routing key, {client_id} expanded (rabbit_mqtt_processor).
  if (broker_.topic_checks_apply(user_, vhost_->name()))
    if (broker::Status e = broker_.check_topic_access(user_, vhost_->name(), s.exchange,
                                                      auth::Permission::kWrite, key, client_id_))
      return "publish refused: " + e->text;
  if (auto x = vhost_->publishable_exchange(s.exchange); !x)
    return "publish refused: " + x.error().text;
  broker::MessageRef msg;
  // Most publishes have no 5.0 properties: one of four prebuilt property blocks.
  const bool has_properties =
      properties != nullptr &&
      (properties->payload_format_indicator || properties->message_expiry_interval ||
       properties->content_type || properties->response_topic || properties->correlation_data ||
       !properties->user_properties.empty());
  if (has_properties) {
    EncodedPublish encoded = publish_properties(qos, dup, *properties);
    msg = broker::Message::create(s.exchange, key, encoded.raw, payload.size());
    msg->expiration_ms = encoded.expiration_ms;
  } else {
    msg = broker::Message::create(s.exchange, key, publish_properties(qos, dup), payload.size());
  }
  msg->append_body(payload);
  msg->delivery_mode = qos == 0 ? 1 : 2;
  msg->retain = retain;
  msg->publisher_tag = static_cast<uint32_t>(id_);
  const bool confirm = packet_id != 0;
  broker::PublishRequest request{std::move(msg), false, flow_.get()};
  request.publisher = &identity_;
  broker::PublishOutcome outcome = vhost_->publish(request);
  broker_.count_publish(*vhost_, outcome, &deliveries_.stats());
  if (confirm) {
    unconfirmed_.push_back({++publish_seq_, packet_id, outcome.queues == 0 && outcome.delayed == 0});
    confirms_.published(publish_seq_, outcome);
    if (outcome.must_wait_for_disk()) broker_.wait_for_journal(this);
    output_added();
  }
  if (broker_.publishing_blocked()) alarm_blocked_ = true;  // alarms_cleared() resumes
  return std::nullopt;
}

void Connection::write_pubacks() {
  if (state_ != State::kRunning || confirms_.confirmed() == publish_seq_) return;
  const uint64_t before = confirms_.confirmed();
  confirms_.take_due(
      publish_seq_,
      [&](uint64_t through, bool) {
        while (!unconfirmed_.empty() && unconfirmed_.front().seq <= through) {
          const Unconfirmed& u = unconfirmed_.front();
          if (!v5())
            write_puback(out(), u.packet_id);
          else  // 5.0 says whether anyone subscribed
            write_puback5(out(), u.packet_id,
                          u.unroutable ? reason::kNoMatchingSubscribers : reason::kSuccess);
          unconfirmed_.pop_front();
        }
      },
      [&](uint64_t tag) {
        if (unconfirmed_.empty() || unconfirmed_.front().seq != tag) return;
        // MQTT 3.1.1 has no negative acknowledgement: no PUBACK, so the client publishes it
        // again after reconnecting (RabbitMQ 3.x does the same). 5.0 has a reason code for it.
        spdlog::warn("MQTT connection {}: publish with packet id {} refused by a queue or the "
                     "store", id_, unconfirmed_.front().packet_id);
        if (v5())
          write_puback5(out(), unconfirmed_.front().packet_id,
                        reason::kImplementationSpecificError);
        unconfirmed_.pop_front();
      });
  if (uint64_t n = confirms_.confirmed() - before)
    broker_.count_confirms(*vhost_, n, &deliveries_.stats());
}

bool Connection::journal_synced(const store::Completion& c) {
  if (confirms_.journal_synced(c)) output_added();
  return confirms_.waits_beyond(c.last_seq);
}

}  // namespace warren::mqtt
