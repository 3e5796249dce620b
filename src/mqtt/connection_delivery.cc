// MQTT connection: deliveries from the client's queues (QoS, 5.0 properties, subscription
// options, topic aliases), their PUBACKs, and what the connection releases when it ends.
#include <algorithm>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "broker/message.h"
#include "broker/vhost.h"
#include "mqtt/connection.h"
#include "mqtt/message_properties.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

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
    for (Qos qos : {Qos::k0, Qos::k1})
      if (broker::Queue* q = vhost_->find_queue(queue_name(qos)); q != nullptr && !q->deleted())
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
