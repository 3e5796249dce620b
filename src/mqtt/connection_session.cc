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
#include "mqtt/topic.h"
#include "store/metadata_store.h"

namespace warren::mqtt {

namespace {

using auth::Permission;

constexpr std::string_view kQosHeader = "x-mqtt-publish-qos";
constexpr std::string_view kDupHeader = "x-mqtt-dup";

// The content-header properties of an MQTT publish, as RabbitMQ sets them: headers
// x-mqtt-publish-qos (byte) and x-mqtt-dup (bool), delivery mode 1 for QoS 0 and 2 (persistent)
// for QoS 1. Built once for the four combinations.
std::string_view publish_properties(uint8_t qos, bool dup) {
  static const std::array<std::string, 4> encoded = [] {
    std::array<std::string, 4> out;
    for (int i = 0; i < 4; ++i) {
      const uint8_t q = i >> 1;
      FieldTable headers;
      headers.set(std::string(kQosHeader), FieldValue(static_cast<int8_t>(q)));
      headers.set(std::string(kDupHeader), FieldValue((i & 1) != 0));
      const std::string table = encode_table_body(headers);
      BasicProperties p;
      p.flags = BasicProperties::kFlagHeaders | BasicProperties::kFlagDeliveryMode;
      p.headers = table;
      p.delivery_mode = q == 0 ? 1 : 2;
      Writer w(out[i]);
      p.encode(w);
    }
    return out;
  }();
  return encoded[(qos << 1) | (dup ? 1 : 0)];
}

struct PublishedAs {
  std::optional<uint8_t> qos;  // x-mqtt-publish-qos; none for an AMQP publish
  bool dup = false;            // x-mqtt-dup
};

PublishedAs published_as(std::string_view raw_properties) {
  PublishedAs out;
  // Most deliveries of AMQP publishes have no such header: skip the decoding for them.
  if (raw_properties.find(kQosHeader) == std::string_view::npos) return out;
  BasicProperties p;
  Reader r(raw_properties);
  if (!p.decode(r) || !p.has_headers()) return out;
  auto headers = decode_table(p.headers);
  if (!headers) return out;
  if (const FieldValue* q = headers->find(kQosHeader))
    if (auto v = q->as_int()) out.qos = static_cast<uint8_t>(std::clamp<int64_t>(*v, 0, 2));
  if (const FieldValue* d = headers->find(kDupHeader)) out.dup = d->as_bool().value_or(false);
  return out;
}

}  // namespace

std::string Connection::queue_name(Qos qos) const {
  return "mqtt-subscription-" + client_id_ + (qos == Qos::k0 ? "qos0" : "qos1");
}

// ---- PUBLISH

bool Connection::on_publish(const Publish& p) {
  const uint8_t qos = p.qos == 2 ? 1 : p.qos;  // QoS 2 is downgraded to 1, as RabbitMQ
  if (auto error = publish(p.topic, p.payload, qos, p.dup, p.packet_id)) {
    close(*error);
    return false;
  }
  if (p.retain) service_.retained().retain(vhost_->name(), p.topic, qos, p.payload);
  return true;
}

std::optional<std::string> Connection::publish(std::string_view topic, std::string_view payload,
                                               uint8_t qos, bool dup, uint16_t packet_id) {
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
  broker::MessageRef msg = broker::Message::create(s.exchange, key, publish_properties(qos, dup),
                                                   payload.size());
  msg->append_body(payload);
  msg->delivery_mode = qos == 0 ? 1 : 2;
  const bool confirm = packet_id != 0;
  if (confirm) unconfirmed_.emplace_back(++publish_seq_, packet_id);
  broker::PublishRequest request{std::move(msg), false, flow_.get()};
  request.publisher = &identity_;
  broker::PublishOutcome outcome = vhost_->publish(request);
  broker_.count_publish(*vhost_, outcome, &deliveries_.stats());
  if (confirm) {
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
        while (!unconfirmed_.empty() && unconfirmed_.front().first <= through) {
          write_puback(out(), unconfirmed_.front().second);
          unconfirmed_.pop_front();
        }
      },
      [&](uint64_t tag) {
        // MQTT 3.1.1 has no negative acknowledgement: no PUBACK, so the client publishes it
        // again after reconnecting (RabbitMQ 3.x does the same).
        if (!unconfirmed_.empty() && unconfirmed_.front().first == tag) {
          spdlog::warn("MQTT connection {}: publish with packet id {} refused by a queue or the "
                       "store; not acknowledged", id_, unconfirmed_.front().second);
          unconfirmed_.pop_front();
        }
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
  const Settings& s = service_.settings();
  const std::string name = queue_name(qos);
  if (broker::Status e = broker_.check_access(user_, vhost_->name(), Permission::kConfigure,
                                              "queue", name)) {
    spdlog::warn("MQTT connection {}: cannot declare queue '{}': {}", id_, name, e->text);
    return nullptr;
  }
  // As rabbit_mqtt_processor:ensure_queue: QoS 0 subscriptions share a transient auto-delete
  // queue; QoS 1 ones a durable queue, auto-delete for a clean session, else kept for
  // subscription_ttl after the client left.
  broker::QueueDeclare d;
  d.name = name;
  if (qos == Qos::k0) {
    d.auto_delete = true;
  } else {
    d.durable = true;
    d.auto_delete = clean_session_;
    if (!clean_session_ && s.subscription_ttl_ms > 0)
      d.arguments.set("x-expires", FieldValue(static_cast<int64_t>(s.subscription_ttl_ms)));
  }
  if (auto declared = vhost_->declare_queue(d, id_); !declared) {
    spdlog::warn("MQTT connection {}: cannot declare queue '{}': {}", id_, name,
                 declared.error().text);
    return nullptr;
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

void Connection::on_subscribe(const Subscribe& s) {
  const std::string& exchange = service_.settings().exchange;
  // The durable queue and bindings a SUBSCRIBE stores share one fsync of the metadata store
  // instead of one each (a persistent session's first SUBSCRIBE declares its queue and binds).
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = broker_.metadata())
    if (auto b = m->begin()) batch.emplace(std::move(*b));
  std::vector<uint8_t> codes;
  std::vector<std::pair<std::string, uint8_t>> granted;
  for (const TopicRequest& t : s.topics) {
    const Qos qos = t.qos == 0 ? Qos::k0 : Qos::k1;  // QoS 2 is granted as 1
    const std::string key = topic_to_routing_key(t.filter);
    broker::Queue* q = nullptr;
    if (valid_topic_filter(t.filter) && key.size() <= 255) q = ensure_queue(qos);
    broker::Status refused;
    if (q != nullptr) {
      refused = broker_.check_access(user_, vhost_->name(), Permission::kWrite, "queue", q->name());
      if (!refused)
        refused = broker_.check_access(user_, vhost_->name(), Permission::kRead, "exchange",
                                       exchange);
      if (!refused) refused = vhost_->bind_queue(q->name(), exchange, key, FieldTable{}, id_);
      if (refused)
        spdlog::warn("MQTT connection {}: subscription to '{}' refused: {}", id_, t.filter,
                     refused->text);
    }
    if (q == nullptr || refused) {
      codes.push_back(kSubackFailure);
      continue;
    }
    // A new subscription to the same filter replaces the old one (3.1.1 section 3.8.4).
    if (auto old = subscriptions_.find(t.filter);
        old != subscriptions_.end() && old->second != static_cast<uint8_t>(qos)) {
      if (broker::Queue* old_q = ensure_queue(static_cast<Qos>(old->second)))
        vhost_->unbind_queue(old_q->name(), exchange, key, FieldTable{}, id_);
    }
    subscriptions_[t.filter] = static_cast<uint8_t>(qos);
    codes.push_back(static_cast<uint8_t>(qos));
    granted.emplace_back(t.filter, static_cast<uint8_t>(qos));
  }
  if (batch)
    if (store::Status failed = batch->commit())
      spdlog::error("MQTT connection {}: the subscriptions of client '{}' are not stored: {}", id_,
                    client_id_, failed->message);
  write_suback(out(), s.packet_id, codes);
  for (const auto& [filter, qos] : granted) send_retained(filter, qos);
  output_added();
}

void Connection::send_retained(const std::string& filter, uint8_t granted) {
  service_.retained().for_each_match(
      vhost_->name(), filter, [&](const std::string& topic, const RetainedMessage& m) {
        // The lower of the subscription's and the message's QoS, as RabbitMQ and mosquitto.
        const uint8_t qos = std::min(granted, m.qos);
        write_publish(out(), topic, m.payload, qos, qos > 0 ? next_packet_id() : 0, false, true);
      });
}

void Connection::on_unsubscribe(const Unsubscribe& u) {
  const std::string& exchange = service_.settings().exchange;
  for (const TopicRequest& t : u.topics) {
    auto it = subscriptions_.find(t.filter);
    if (it == subscriptions_.end()) continue;
    const Qos qos = static_cast<Qos>(it->second);
    subscriptions_.erase(it);
    const auto& consumer = consumers_[static_cast<int>(qos)];
    if (consumer && consumer->queue)
      vhost_->unbind_queue(consumer->queue->name(), exchange, topic_to_routing_key(t.filter),
                           FieldTable{}, id_);
  }
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
  if (qos == 0) {
    deliveries_.delivered(&c, q, std::move(m), true);
    write_publish(out(), topic, msg->body(), 0, 0, dup, false);
  } else {
    const uint64_t tag = deliveries_.delivered(&c, q, std::move(m), false);
    const uint16_t packet_id = next_packet_id();
    awaiting_puback_.emplace_back(packet_id, tag);
    write_publish(out(), topic, msg->body(), 1, packet_id, dup, false);
  }
  output_added();
}

void Connection::on_puback(uint16_t packet_id) {
  // An unknown id (a retained message's, or a bogus client's) is ignored, as RabbitMQ.
  auto it = std::find_if(awaiting_puback_.begin(), awaiting_puback_.end(),
                         [&](const auto& p) { return p.first == packet_id; });
  if (it == awaiting_puback_.end()) return;
  const uint64_t tag = it->second;
  awaiting_puback_.erase(it);
  deliveries_.settle(tag, false, broker::Settlement::kAck);
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

// ---- will and release

void Connection::publish_will() {
  if (!will_) return;
  Will w = std::move(*will_);
  will_.reset();
  const uint8_t qos = w.qos == 0 ? 0 : 1;
  if (auto error = publish(w.topic, w.payload, qos, false, 0)) {
    spdlog::warn("MQTT connection {}: could not send last will: {}", id_, *error);
    return;
  }
  if (w.retain) service_.retained().retain(vhost_->name(), w.topic, qos, w.payload);
}

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
