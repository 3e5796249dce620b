// MQTT connection: PUBLISH, SUBSCRIBE/UNSUBSCRIBE, deliveries and their PUBACKs, retained
// messages and the will, all through the broker core (VHost::publish, queues, consumers).
#include <algorithm>
#include <array>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "auth/access_control.h"
#include "broker/message.h"
#include "broker/vhost.h"
#include "common/basic_properties.h"
#include "common/field_table.h"
#include "mqtt/connection.h"
#include "mqtt/message_properties.h"
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

// ---- PUBLISH

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
    if (broker::Status e = broker_.check_access(user_, vhost_->name(), Permission::kWrite,
                                                "exchange", s.exchange))
      return "publish refused: " + e->text;
    write_permitted_generation_ = generation;
  }
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

// ---- SUBSCRIBE / UNSUBSCRIBE

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
    if (qos == Qos::k0) {
      d.auto_delete = true;
    } else {
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
      refused = broker_.check_access(user_, vhost_->name(), Permission::kWrite, "queue", q->name());
      if (!refused)
        refused = broker_.check_access(user_, vhost_->name(), Permission::kRead, "exchange",
                                       exchange);
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
    subscriptions_.erase(it);
    const auto& consumer = consumers_[sub.qos];
    if (consumer && consumer->queue)
      vhost_->unbind_queue(consumer->queue->name(), exchange, topic_to_routing_key(t.filter),
                           binding_arguments(sub), id_);
    codes.push_back(reason::kSuccess);
  }
  if (v5())
    write_unsuback5(out(), u.packet_id, codes);
  else
    write_unsuback(out(), u.packet_id);
  output_added();
}

// ---- deliveries

uint16_t Connection::next_packet_id() {
  while (true) {
    last_packet_id_ = last_packet_id_ == 0xFFFF ? 1 : last_packet_id_ + 1;
    const bool in_use = std::any_of(awaiting_puback_.begin(), awaiting_puback_.end(),
                                    [&](const auto& p) { return p.first == last_packet_id_; });
    if (!in_use) return last_packet_id_;
  }
}

bool Connection::can_deliver(const broker::Consumer& c) const {
  if (state_ != State::kRunning || output_blocked()) return false;
  return c.no_ack || deliveries_.can_deliver(c);
}

void Connection::deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) {
  broker::MessageRef msg = m.msg;  // the tracker may drop its reference (QoS 0) at once
  const bool redelivered = m.redelivered;
  const uint64_t expires_at = m.expires_at;
  // The delivery QoS: 0 from the QoS 0 queue; from the QoS 1 queue the publisher's QoS, and 1
  // for an AMQP publish (rabbit_mqtt_processor:delivery_qos).
  uint8_t qos = 0;
  PublishedAs as = published_as(msg->raw_properties());
  if (!c.no_ack) qos = as.qos ? std::min<uint8_t>(*as.qos, 1) : 1;
  const bool dup = redelivered || as.dup;
  if (dup && qos == 0) {
    // As RabbitMQ: a QoS 0 message seen before is not sent again.
    deliveries_.delivered(&c, q, std::move(m), true);
    return;
  }
  const std::string topic = routing_key_to_topic(msg->routing_key());
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  if (subscription_options_in_use_) {
    // The subscriptions of this queue that the message matched decide its retain flag, its
    // Subscription Identifiers and whether No Local drops it (RabbitMQ 3.13 drops at routing
    // when every binding that matched is No Local).
    const uint8_t queue_qos = c.no_ack ? 0 : 1;
    bool all_no_local = true, matched = false;
    for (const auto& [filter, sub] : subscriptions_) {
      if (sub.qos != queue_qos || !topic_matches(filter, topic)) continue;
      matched = true;
      all_no_local &= sub.no_local;
      retain |= sub.retain_as_published && msg->retain;
      if (sub.id != 0) subscription_ids.push_back(sub.id);
    }
    if (matched && all_no_local && msg->publisher_tag == static_cast<uint32_t>(id_)) {
      const uint64_t tag = deliveries_.delivered(&c, q, std::move(m), c.no_ack);
      if (!c.no_ack) deliveries_.settle(tag, false, broker::Settlement::kAck);
      return;
    }
  }
  if (qos == 0) {
    deliveries_.delivered(&c, q, std::move(m), true);
    if (!v5())
      write_publish(out(), topic, msg->body(), 0, 0, dup, false);
    else
      write_delivery5(*msg, expires_at, 0, 0, dup, retain, subscription_ids);
  } else {
    const uint64_t tag = deliveries_.delivered(&c, q, std::move(m), false);
    if (!v5()) {
      const uint16_t packet_id = next_packet_id();
      awaiting_puback_.emplace_back(packet_id, tag);
      write_publish(out(), topic, msg->body(), 1, packet_id, dup, false);
    } else {
      const uint16_t packet_id = next_packet_id();
      if (write_delivery5(*msg, expires_at, 1, packet_id, dup, retain, subscription_ids)) {
        awaiting_puback_.emplace_back(packet_id, tag);
      } else {
        // Too large for the client: dropped as if sent (MQTT 5.0 [MQTT-3.1.2-25]).
        deliveries_.settle(tag, false, broker::Settlement::kAck);
      }
    }
  }
  output_added();
}

bool Connection::write_delivery5(const broker::Message& msg, uint64_t expires_at, uint8_t qos, uint16_t packet_id, bool dup, bool retain,
                                 const std::vector<uint32_t>& subscription_ids) {
  PropertyWriter w;
  int64_t expires_in_ms = -1;
  if (msg.expiration_ms >= 0 && expires_at != 0)
    expires_in_ms = std::max<int64_t>(0, static_cast<int64_t>(expires_at) -
                                             static_cast<int64_t>(broker::steady_now_ms()));
  delivery_properties(msg.raw_properties(), expires_in_ms, w);
  for (uint32_t id : subscription_ids) w.varint(PropertyId::kSubscriptionIdentifier, id);
  std::string topic = routing_key_to_topic(msg.routing_key());
  if (publish5_size(topic, msg.body().size(), qos, w.bytes()) > max_packet_out_) {
    spdlog::debug("MQTT connection {}: a message of {} bytes is over the client's maximum packet "
                  "size {}; dropped", id_, msg.body().size(), max_packet_out_);
    return false;
  }
  if (topic_alias_max_out_ > 0 && topic.size() > 1) {
    // Topic aliases the client accepts replace a topic sent before (RabbitMQ 3.13 numbers them
    // in order of first use, until the client's maximum).
    if (auto it = aliases_out_.find(topic); it != aliases_out_.end()) {
      w.u16(PropertyId::kTopicAlias, it->second);
      topic.clear();
    } else if (aliases_out_.size() < topic_alias_max_out_) {
      const auto alias = static_cast<uint16_t>(aliases_out_.size() + 1);
      aliases_out_.emplace(topic, alias);
      w.u16(PropertyId::kTopicAlias, alias);
    }
  }
  write_publish5(out(), topic, msg.body(), qos, packet_id, dup, retain, w.bytes());
  return true;
}

void Connection::on_puback(uint16_t packet_id, uint8_t code) {
  // An unknown id (a retained message's, or a bogus client's) is ignored, as RabbitMQ.
  auto it = std::find_if(awaiting_puback_.begin(), awaiting_puback_.end(),
                         [&](const auto& p) { return p.first == packet_id; });
  if (it == awaiting_puback_.end()) return;
  const uint64_t tag = it->second;
  awaiting_puback_.erase(it);
  deliveries_.settle(tag, false,
                     code < reason::kUnspecifiedError ? broker::Settlement::kAck
                                                      : broker::Settlement::kReject);
}

void Connection::cancelled_by_broker(broker::Consumer& c) {
  for (auto& consumer : consumers_) {
    if (consumer.get() != &c) continue;
    deliveries_.consumer_gone(&c);
    consumer.reset();
  }
  // Its subscription queue was deleted: as RabbitMQ, the connection closes (after the
  // deletion that called us has finished).
  boost::asio::post(stream_->executor(), [self = shared_from_this()] {
    self->close("subscription queue deleted");
  });
}

// ---- release

void Connection::release_resources() {
  if (resources_released_) return;
  resources_released_ = true;
  flow_->stop();
  for (auto& consumer : consumers_) {
    if (!consumer) continue;
    deliveries_.consumer_gone(consumer.get());
    broker::Queue* q = consumer->queue.get();
    if (q != nullptr && !q->deleted() && q->remove_consumer(consumer.get()))
      vhost_->remove_queue(q);
    consumer.reset();
  }
  // A session that ends with its connection takes its queue along, also one declared to
  // outlive it (a 5.0 session resumed with expiry 0, or ended by DISCONNECT's expiry 0).
  if (vhost_ != nullptr && state_ == State::kRunning && session_expiry_ms_ == 0)
    if (broker::Queue* q = vhost_->find_queue(queue_name(Qos::k1)); q != nullptr && !q->deleted())
      if (auto deleted = vhost_->delete_queue(q->name(), false, false, id_); !deleted)
        spdlog::warn("MQTT connection {}: cannot delete the session queue '{}': {}", id_,
                     q->name(), deleted.error().text);
  // Unacknowledged QoS 1 deliveries go back to their queue, flagged redelivered: a persistent
  // session sends them again (DUP) after a reconnect.
  deliveries_.requeue_all();
  awaiting_puback_.clear();
  if (vhost_ != nullptr && state_ == State::kRunning) {
    --vhost_->open_connections;
    vhost_->connection_closed(id_);
  }
  if (registered_) service_.release(vhost_->name(), client_id_, this);
  registered_ = false;
  broker_.stop_waiting_for_journal(this);
}

}  // namespace warren::mqtt
