// MQTT connection: SUBSCRIBE and UNSUBSCRIBE as bindings of the client's queues to the
// exchange, and the retained messages a new subscription gets.
#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/vhost.h"
#include "mqtt/connection.h"
#include "mqtt/topic.h"
#include "store/metadata_store.h"

namespace warren::mqtt {

namespace {

using auth::Permission;

// The lowest QoS a subscription grants (QoS 2 is granted as 1, as RabbitMQ).
uint8_t granted_qos(uint8_t requested) { return requested == 0 ? 0 : 1; }

}  // namespace

std::string Connection::queue_name(Qos qos) const {
  return "mqtt-subscription-" + client_id_ + (qos == Qos::k0 ? "qos0" : "qos1");
}

broker::Queue* Connection::ensure_queue(Qos qos) {
  std::unique_ptr<broker::Consumer>& consumer = consumers_[static_cast<int>(qos)];
  if (consumer) return consumer->queue.get();
  const std::string name = queue_name(qos);
  if (broker::Status e = broker_.check_access(user_, vhost_->name(), Permission::kConfigure,
                                              "queue", name)) {
    spdlog::warn("MQTT connection {}: cannot declare queue '{}': {}", id_, name, e->text);
    return nullptr;
  }
  // As rabbit_mqtt_processor:ensure_queue: QoS 0 subscriptions share a transient auto-delete
  // queue; QoS 1 ones a durable queue, auto-delete when the session ends with the connection,
  // else kept for the session expiry interval after the client left. A resumed session's queue
  // is used as it is (a 5.0 client may ask for another interval; see the README).
  if (vhost_->find_queue(name) == nullptr) {
    broker::QueueDeclare d;
    d.name = name;
    if (qos == Qos::k0 && session_expiry_ms_ == 0) {
      d.auto_delete = true;
    } else {
      // A session that outlives its connection keeps its QoS 0 subscriptions too (as RabbitMQ
      // 3.13, where both queues of such a session are durable with x-expires).
      d.durable = true;
      d.auto_delete = session_expiry_ms_ == 0;
      if (session_expiry_ms_ != 0 && session_expiry_ms_ != kNeverExpires)
        d.arguments.set("x-expires", FieldValue(static_cast<int64_t>(session_expiry_ms_)));
    }
    if (auto declared = vhost_->declare_queue(d, id_); !declared) {
      spdlog::warn("MQTT connection {}: cannot declare queue '{}': {}", id_, name,
                   declared.error().text);
      return nullptr;
    }
  }
  if (broker::Status e = broker_.check_access(user_, vhost_->name(), Permission::kRead, "queue",
                                              name)) {
    spdlog::warn("MQTT connection {}: cannot consume from queue '{}': {}", id_, name, e->text);
    return nullptr;
  }
  broker::Queue* q = vhost_->find_queue(name);
  if (q == nullptr) return nullptr;
  consumer = std::make_unique<broker::Consumer>();
  consumer->tag = qos == Qos::k0 ? "mqtt-qos0" : "mqtt-qos1";
  consumer->sink = this;
  consumer->queue = broker::QueueRef(q);
  consumer->connection_id = id_;
  consumer->no_ack = qos == Qos::k0;
  consumer->prefetch = qos == Qos::k0 ? 0 : deliveries_.consumer_prefetch();
  q->add_consumer(consumer.get());
  return q;
}

broker::Status Connection::binding_refused(const std::string& queue, std::string_view key) {
  const std::string& exchange = service_.settings().exchange;
  if (broker::Status e =
          broker_.check_access(user_, vhost_->name(), Permission::kWrite, "queue", queue))
    return e;
  if (broker::Status e =
          broker_.check_access(user_, vhost_->name(), Permission::kRead, "exchange", exchange))
    return e;
  return broker_.check_topic_access(user_, vhost_->name(), exchange, Permission::kRead, key,
                                    client_id_);
}

FieldTable Connection::binding_arguments(const Subscription& s) {
  FieldTable args;
  if (!s.with_options) return args;
  FieldTable o;
  if (s.id != 0) o.set("id", FieldValue(s.id));
  o.set("no-local", FieldValue(s.no_local));
  o.set("qos", FieldValue(s.qos));
  o.set("retain-as-published", FieldValue(s.retain_as_published));
  o.set("retain-handling", FieldValue(s.retain_handling));
  args.set(std::string(kSubscriptionOptionsArgument), FieldValue(std::move(o)));
  return args;
}

void Connection::on_subscribe(const Subscribe& s) {
  const std::string& exchange = service_.settings().exchange;
  // The durable queue and bindings a SUBSCRIBE stores share one fsync of the metadata store
  // instead of one each (a persistent session's first SUBSCRIBE declares its queue and binds).
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = broker_.metadata())
    if (auto b = m->begin()) batch.emplace(std::move(*b));
  std::vector<uint8_t> codes;
  std::vector<std::pair<std::string, uint8_t>> retained_to_send;
  const uint32_t subscription_id =
      s.properties.subscription_identifiers.empty() ? 0 : s.properties.subscription_identifiers[0];
  for (const TopicRequest& t : s.topics) {
    Subscription sub;
    sub.qos = granted_qos(t.qos);
    if (v5()) {
      sub.with_options = true;
      sub.no_local = t.no_local;
      sub.retain_as_published = t.retain_as_published;
      sub.retain_handling = t.retain_handling;
      sub.id = subscription_id;
      // Shared subscriptions are not offered (CONNACK says so).
      if (t.filter.starts_with("$share/")) {
        codes.push_back(reason::kSharedSubscriptionsNotSupported);
        continue;
      }
    }
    const std::string key = topic_to_routing_key(t.filter);
    if (!valid_topic_filter(t.filter) || key.size() > 255) {
      codes.push_back(v5() ? reason::kTopicFilterInvalid : kSubackFailure);
      continue;
    }
    auto old = subscriptions_.find(t.filter);
    const bool existed = old != subscriptions_.end();
    if (existed && old->second == sub) {  // the same subscription again: nothing to bind
      codes.push_back(sub.qos);
      if (sub.retain_handling == 0) retained_to_send.emplace_back(t.filter, sub.qos);
      continue;
    }
    broker::Queue* q = ensure_queue(static_cast<Qos>(sub.qos));
    broker::Status refused;
    if (q == nullptr) {
      refused = broker::make_error(broker::ErrorCode::kAccessRefused, "cannot use the queue");
    } else {
      refused = binding_refused(q->name(), key);
      if (!refused)
        refused = vhost_->bind_queue(q->name(), exchange, key, binding_arguments(sub), id_);
      if (refused)
        spdlog::warn("MQTT connection {}: subscription to '{}' refused: {}", id_, t.filter,
                     refused->text);
    }
    if (refused) {
      codes.push_back(!v5()                                                 ? kSubackFailure
                      : refused->code == broker::ErrorCode::kAccessRefused ? reason::kNotAuthorized
                                                                            : reason::kUnspecifiedError);
      continue;
    }
    // A new subscription to the same filter replaces the old one (3.1.1 section 3.8.4).
    if (existed) {
      if (broker::Queue* old_q = ensure_queue(static_cast<Qos>(old->second.qos)))
        vhost_->unbind_queue(old_q->name(), exchange, key, binding_arguments(old->second), id_);
    }
    subscriptions_[t.filter] = sub;
    subscription_options_in_use_ |= sub.id != 0 || sub.no_local || sub.retain_as_published;
    codes.push_back(sub.qos);
    // Retain Handling 1 sends retained messages only for a new subscription, 2 never.
    if (sub.retain_handling == 0 || (sub.retain_handling == 1 && !existed))
      retained_to_send.emplace_back(t.filter, sub.qos);
  }
  if (batch)
    if (store::Status failed = batch->commit())
      spdlog::error("MQTT connection {}: the subscriptions of client '{}' are not stored: {}", id_,
                    client_id_, failed->message);
  if (v5())
    write_suback5(out(), s.packet_id, codes);
  else
    write_suback(out(), s.packet_id, codes);
  for (const auto& [filter, qos] : retained_to_send) send_retained(filter, qos);
  output_added();
}

void Connection::send_retained(const std::string& filter, uint8_t granted) {
  const uint64_t now = broker::wall_now_ms();
  service_.retained().for_each_match(
      vhost_->name(), filter, [&](const std::string& topic, const RetainedMessage& m) {
        // The lower of the subscription's and the message's QoS, as RabbitMQ and mosquitto.
        const uint8_t qos = std::min(granted, m.qos);
        const uint16_t packet_id = qos > 0 ? next_packet_id() : 0;
        if (!v5()) {
          write_publish(out(), topic, m.payload, qos, packet_id, false, true);
          return;
        }
        // The publish's properties, what is left of its expiry, and the subscription's id.
        std::string properties = m.properties;
        PropertyWriter w;
        if (m.expires_at_ms != 0)
          w.u32(PropertyId::kMessageExpiryInterval,
                static_cast<uint32_t>((m.expires_at_ms - std::min(m.expires_at_ms, now)) / 1000));
        if (auto it = subscriptions_.find(filter); it != subscriptions_.end() && it->second.id != 0)
          w.varint(PropertyId::kSubscriptionIdentifier, it->second.id);
        properties += w.bytes();
        if (publish5_size(topic, m.payload.size(), qos, properties) <= max_packet_out_)
          write_publish5(out(), topic, m.payload, qos, packet_id, false, true, properties);
      });
}

void Connection::on_unsubscribe(const Unsubscribe& u) {
  const std::string& exchange = service_.settings().exchange;
  std::vector<uint8_t> codes;
  for (const TopicRequest& t : u.topics) {
    auto it = subscriptions_.find(t.filter);
    if (it == subscriptions_.end()) {
      codes.push_back(reason::kNoSubscriptionExisted);
      continue;
    }
    const Subscription sub = it->second;
    const std::string key = topic_to_routing_key(t.filter);
    // Unbinding needs what binding needed (RabbitMQ 3.13's binding_action_with_checks): a
    // refusal keeps the subscription.
    const auto& consumer = consumers_[sub.qos];
    broker::Status refused;
    if (consumer && consumer->queue) {
      refused = binding_refused(consumer->queue->name(), key);
      if (!refused)
        refused = vhost_->unbind_queue(consumer->queue->name(), exchange, key,
                                       binding_arguments(sub), id_);
    }
    if (refused) {
      spdlog::warn("MQTT connection {}: unsubscribe from '{}' refused: {}", id_, t.filter,
                   refused->text);
      codes.push_back(refused->code == broker::ErrorCode::kAccessRefused
                          ? reason::kNotAuthorized
                          : reason::kUnspecifiedError);
      continue;
    }
    subscriptions_.erase(it);
    codes.push_back(reason::kSuccess);
  }
  if (v5())
    write_unsuback5(out(), u.packet_id, codes);
  else
    write_unsuback(out(), u.packet_id);
  output_added();
}

}  // namespace warren::mqtt
