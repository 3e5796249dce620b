#include "amqp/channel.h"

#include <algorithm>
#include <random>

#include "amqp/connection.h"
#include "amqp/frame_errors.h"
#include "broker/queue_arguments.h"
#include "broker/vhost.h"
#include "auth/access_control.h"
#include "common/random_id.h"

namespace warren::amqp {


namespace {

std::string random_tag(std::string_view prefix) { return random_id(prefix); }

// Stamps the failing method's ids on an error so channel.close/connection.close carry them.
// 312 NO_ROUTE is a RabbitMQ reply code that the spec XML does not list.
constexpr uint16_t kReplyNoRoute = 312;

Status with_method(Status s, uint16_t class_id, uint16_t method_id) {
  if (s && s->class_id == 0) {
    s->class_id = class_id;
    s->method_id = method_id;
  }
  return s;
}

using auth::Permission;

// One row of RabbitMQ's access-control table (rabbit_channel's check_*_permitted): nullopt when
// the connection's user may do `what` on the resource. Permissions are read at each call, so a
// change applies to the next operation without reconnecting.
Status require(Connection& c, Permission what, std::string_view kind, std::string_view name) {
  if (broker::Status s = c.broker().check_access(c.user(), c.vhost().name(), what, kind, name))
    return *s;
  return std::nullopt;
}

// rabbit_channel:binding_action: read on the binding key when the source is a topic exchange
// and the user has topic permissions in the vhost (a missing source passes; the bind fails).
Status require_topic_read(Connection& c, std::string_view exchange, std::string_view key) {
  broker::Broker& b = c.broker();
  if (!b.topic_checks_apply(c.user(), c.vhost().name())) return std::nullopt;
  if (broker::Status s = b.check_topic_access_on(c.vhost().find_exchange(exchange), c.user(),
                                                 c.vhost().name(), Permission::kRead, key))
    return *s;
  return std::nullopt;
}

}  // namespace

Channel::Channel(Connection& conn, uint16_t id)
    : conn_(conn), id_(id), identity_{conn.user(), conn.name(), id} {}

Channel::~Channel() {
  shutdown();
  if (commit_journal_seq_ != 0) conn_.hold_reading(false);
  conn_.broker().stop_waiting_for_journal(this);
}

template <class M>
void Channel::send(const M& m) {
  write_method(conn_.out(), id_, m);
  conn_.output_added();
}

Status Channel::content_error(std::string_view expected, std::string_view got) {
  return with_method(amqp_error(kUnexpectedFrame, "expected {}, got {} instead", expected, got),
                     kBasicClass, BasicPublish::kMethodId);
}

Status Channel::handle_method(uint16_t class_id, uint16_t method_id, Reader& r) {
  if (assembly_ == Assembly::kHeader)
    return content_error("content header for class 60", "non content header frame");
  if (assembly_ == Assembly::kBody) return content_error("content body", "non content body frame");
  return with_method(dispatch_method(class_id, method_id, r, *this), class_id, method_id);
}

Status Channel::on_unknown_method(uint16_t class_id, uint16_t method_id) {
  return amqp_error(kCommandInvalid, "unknown method {}.{} (class {}, method {})", class_id,
                    method_id, class_id, method_id);
}

Status Channel::on_malformed_method(uint16_t class_id, uint16_t method_id, std::string_view args) {
  // Reached when the connection left the check to decoding (method_checks_utf8() is false): the
  // same error as its own check gives.
  return cannot_decode(class_id, method_id, args);
}

OpResult<FieldTable> Channel::table(std::string_view raw) const {
  auto t = decode_table(raw);
  if (!t) return amqp_error(kSyntaxError, "malformed field table");
  return std::move(*t);
}

OpResult<std::string> Channel::queue_name(std::string_view name) const {
  if (!name.empty()) return std::string(name);
  if (last_queue_.empty()) return amqp_error(kNotFound, "no previously declared queue");
  return last_queue_;
}

// ---- channel class ----

Status Channel::on(const ChannelOpen&) {
  return amqp_error(kChannelError, "second 'channel.open' seen");
}

Status Channel::on(const ChannelFlow& m) {
  if (!m.active) return amqp_error(kNotImplemented, "active=false");
  send(ChannelFlowOk{true});
  return std::nullopt;
}

Status Channel::on(const ChannelClose&) {
  // Handled by the connection (it owns the channel's lifetime).
  return std::nullopt;
}

Status Channel::on(const ChannelCloseOk&) { return std::nullopt; }

// ---- exchange class ----

Status Channel::on(const ExchangeDeclare& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  broker::ExchangeDeclare d{m.exchange, m.type, m.passive, m.durable, m.auto_delete, m.internal,
                            std::move(*args)};
  if (!m.passive) {
    if (Status s = require(conn_, Permission::kConfigure, "exchange", m.exchange)) return s;
    // An alternate exchange is published to on this exchange's behalf.
    if (const FieldValue* ae = d.arguments.find("alternate-exchange"))
      if (auto name = ae->as_string()) {
        // rabbit_channel checks read on this exchange first, then write on the AE.
        if (Status s = require(conn_, Permission::kRead, "exchange", m.exchange)) return s;
        if (Status s = require(conn_, Permission::kWrite, "exchange", *name)) return s;
      }
  }
  if (Status s = conn_.vhost().declare_exchange(d)) return s;
  if (!m.no_wait) send(ExchangeDeclareOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeDelete& m) {
  if (Status s = require(conn_, Permission::kConfigure, "exchange", m.exchange)) return s;
  if (Status s = conn_.vhost().delete_exchange(m.exchange, m.if_unused)) return s;
  if (!m.no_wait) send(ExchangeDeleteOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeBind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  if (Status s = require(conn_, Permission::kWrite, "exchange", m.destination)) return s;
  if (Status s = require(conn_, Permission::kRead, "exchange", m.source)) return s;
  if (Status s = require_topic_read(conn_, m.source, m.routing_key)) return s;
  if (Status s = conn_.vhost().bind_exchange(m.destination, m.source, m.routing_key, *args))
    return s;
  if (!m.no_wait) send(ExchangeBindOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeUnbind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  if (Status s = require(conn_, Permission::kWrite, "exchange", m.destination)) return s;
  if (Status s = require(conn_, Permission::kRead, "exchange", m.source)) return s;
  if (Status s = require_topic_read(conn_, m.source, m.routing_key)) return s;
  if (Status s = conn_.vhost().unbind_exchange(m.destination, m.source, m.routing_key, *args))
    return s;
  if (!m.no_wait) send(ExchangeUnbindOk{});
  return std::nullopt;
}

// ---- queue class ----

Status Channel::on(const QueueDeclare& m) {
  if (m.queue.starts_with(kReplyToQueue)) {
    // As RabbitMQ, every declare of such a name is passive: the direct reply-to pseudo-queue
    // always exists, a reply address while its consumer lives, and either has one consumer.
    std::string_view rest = m.queue.substr(kReplyToQueue.size());
    bool exists = rest.empty() || (rest.size() > 1 && rest[0] == '.' &&
                                   conn_.broker().reply_consumers().find(rest.substr(1)));
    if (!exists)
      return amqp_error(kNotFound, "no queue '{}' in vhost '{}'", m.queue, conn_.vhost().name());
    last_queue_ = m.queue;
    if (!m.no_wait) send(QueueDeclareOk{m.queue, 0, 1});
    return std::nullopt;
  }
  auto args = table(m.arguments);
  if (!args) return args.error();
  broker::QueueDeclare d{m.queue, m.passive, m.durable, m.exclusive, m.auto_delete,
                         std::move(*args)};
  // As rabbit_channel: a server-named queue gets its name first and that name is checked; a
  // reserved amq.* name is refused (by the vhost) before any permission; passive needs none.
  std::string generated;
  if (!m.passive && m.queue.empty()) {
    generated = conn_.vhost().generate_queue_name();
    d.name = generated;
    d.server_named = true;
  }
  if (!m.passive && (d.server_named || !m.queue.starts_with("amq."))) {
    if (Status s = require(conn_, Permission::kConfigure, "queue", d.name)) return s;
    // Dead letters are published to the DLX on the queue's behalf.
    if (const FieldValue* dlx = d.arguments.find("x-dead-letter-exchange"))
      if (auto name = dlx->as_string()) {
        // rabbit_channel:check_dlx: read on the queue first, then write on the DLX.
        if (Status s = require(conn_, Permission::kRead, "queue", d.name)) return s;
        if (Status s = require(conn_, Permission::kWrite, "exchange", *name)) return s;
      }
  }
  auto ok = conn_.vhost().declare_queue(d, conn_.id());
  if (!ok) return ok.error();
  last_queue_ = ok->name;
  if (!m.no_wait) send(QueueDeclareOk{ok->name, ok->message_count, ok->consumer_count});
  return std::nullopt;
}

Status Channel::on(const QueueBind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  std::string_view key = m.routing_key;
  if (m.queue.empty() && key.empty()) key = *q;
  if (Status s = require(conn_, Permission::kWrite, "queue", *q)) return s;
  if (Status s = require(conn_, Permission::kRead, "exchange", m.exchange)) return s;
  if (Status s = require_topic_read(conn_, m.exchange, key)) return s;
  if (Status s = conn_.vhost().bind_queue(*q, m.exchange, key, *args, conn_.id())) return s;
  if (!m.no_wait) send(QueueBindOk{});
  return std::nullopt;
}

Status Channel::on(const QueueUnbind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  if (Status s = require(conn_, Permission::kWrite, "queue", *q)) return s;
  if (Status s = require(conn_, Permission::kRead, "exchange", m.exchange)) return s;
  if (Status s = require_topic_read(conn_, m.exchange, m.routing_key)) return s;
  if (Status s = conn_.vhost().unbind_queue(*q, m.exchange, m.routing_key, *args, conn_.id()))
    return s;
  send(QueueUnbindOk{});
  return std::nullopt;
}

Status Channel::on(const QueuePurge& m) {
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  if (Status s = require(conn_, Permission::kRead, "queue", *q)) return s;
  auto n = conn_.vhost().purge_queue(*q, conn_.id());
  if (!n) return n.error();
  if (!m.no_wait) send(QueuePurgeOk{*n});
  return std::nullopt;
}

Status Channel::on(const QueueDelete& m) {
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  if (Status s = require(conn_, Permission::kConfigure, "queue", *q)) return s;
  auto n = conn_.vhost().delete_queue(*q, m.if_unused, m.if_empty, conn_.id());
  if (!n) return n.error();
  if (!m.no_wait) send(QueueDeleteOk{*n});
  return std::nullopt;
}

// ---- basic class: qos, consume, cancel ----

Status Channel::on(const BasicQos& m) {
  if (m.prefetch_size != 0)
    return amqp_error(kNotImplemented, "prefetch_size!=0 ({})", m.prefetch_size);
  deliveries_.set_prefetch(m.prefetch_count, m.global);
  send(BasicQosOk{});
  request_dispatch_all();
  return std::nullopt;
}

Status Channel::on(const BasicConsume& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  if (m.queue == kReplyToQueue) return consume_reply_to(m);
  auto qname = queue_name(m.queue);
  if (!qname) return qname.error();
  if (Status s = require(conn_, Permission::kRead, "queue", *qname)) return s;
  auto q = conn_.vhost().usable_queue(*qname, conn_.id());
  if (!q) return q.error();
  broker::Queue* queue = *q;
  std::string tag = m.consumer_tag.empty() ? random_tag("amq.ctag-") : std::string(m.consumer_tag);
  if (consumers_.count(tag))
    return amqp_error(kNotAllowed, "attempt to reuse consumer tag '{}'", tag);
  // As RabbitMQ: the arguments are checked before exclusive use.
  if (broker::Status invalid =
          broker::validate_consume_arguments(*args, queue->name(), queue->vhost()))
    return *invalid;
  // An exclusive consumer on a single-active-consumer queue is refused even when it would be
  // the only one (RabbitMQ: exclusive_consume_unavailable).
  if (queue->has_exclusive_consumer() ||
      (m.exclusive && (queue->consumer_count() > 0 || queue->settings().single_active_consumer)))
    return amqp_error(kAccessRefused, "queue '{}' in vhost '{}' in exclusive use", queue->name(),
                      queue->vhost());
  auto c = std::make_unique<broker::Consumer>();
  c->tag = tag;
  c->sink = this;
  c->queue = broker::QueueRef(queue);
  c->connection_id = conn_.id();
  c->no_ack = m.no_ack;
  c->exclusive = m.exclusive;
  c->prefetch = deliveries_.consumer_prefetch();
  if (const FieldValue* p = args->find("x-priority")) c->priority = *p->as_int();
  c->arguments = std::move(*args);
  broker::Consumer* raw = c.get();
  consumers_.emplace(tag, std::move(c));
  // consume-ok goes out before any delivery: deliveries are written by the next dispatch.
  if (!m.no_wait) send(BasicConsumeOk{tag});
  queue->add_consumer(raw);
  return std::nullopt;
}

Status Channel::consume_reply_to(const BasicConsume& m) {
  if (!m.no_ack) return amqp_error(kPreconditionFailed, "reply consumer cannot acknowledge");
  if (!reply_token_.empty()) return amqp_error(kPreconditionFailed, "reply consumer already set");
  std::string tag = m.consumer_tag.empty() ? random_tag("amq.ctag-") : std::string(m.consumer_tag);
  if (consumers_.count(tag))
    return amqp_error(kNotAllowed, "attempt to reuse consumer tag '{}'", tag);
  auto c = std::make_unique<broker::Consumer>();
  c->tag = tag;
  c->sink = this;
  c->connection_id = conn_.id();
  c->no_ack = true;
  reply_token_ = random_tag("");
  conn_.broker().reply_consumers().add(reply_token_, c.get());
  consumers_.emplace(tag, std::move(c));
  if (!m.no_wait) send(BasicConsumeOk{tag});
  return std::nullopt;
}

Status Channel::on(const BasicCancel& m) {
  std::string tag(m.consumer_tag);
  remove_consumer(tag, false);
  if (!m.no_wait) send(BasicCancelOk{tag});
  return std::nullopt;
}

void Channel::remove_consumer(const std::string& tag, bool notify_client) {
  auto it = consumers_.find(tag);
  if (it == consumers_.end()) return;
  std::unique_ptr<broker::Consumer> c = std::move(it->second);
  consumers_.erase(it);
  deliveries_.consumer_gone(c.get());
  broker::Queue* q = c->queue.get();
  if (notify_client && conn_.consumer_cancel_notify()) send(BasicCancel{tag, true});
  if (q == nullptr) {  // the direct reply-to consumer
    conn_.broker().reply_consumers().remove(reply_token_);
    reply_token_.clear();
    return;
  }
  if (!q->deleted() && q->remove_consumer(c.get())) conn_.vhost().remove_queue(q);
}

void Channel::cancelled_by_broker(broker::Consumer& c) {
  // The queue already dropped the consumer; forget it and tell the client.
  auto it = consumers_.find(c.tag);
  if (it == consumers_.end()) return;
  std::unique_ptr<broker::Consumer> owned = std::move(it->second);
  consumers_.erase(it);
  deliveries_.consumer_gone(owned.get());
  if (conn_.consumer_cancel_notify() && !closing_) send(BasicCancel{owned->tag, true});
}

// ---- delivery ----

bool Channel::can_deliver(const broker::Consumer& c) const {
  if (closing_ || conn_.output_blocked()) return false;
  return deliveries_.can_deliver(c);
}

void Channel::deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) {
  broker::MessageRef msg = m.msg;  // the tracker may drop its reference (no-ack) at once
  bool redelivered = m.redelivered;
  uint64_t tag = deliveries_.delivered(&c, q, std::move(m), c.no_ack);
  write_delivery(conn_.out(), id_,
                 BasicDeliver{c.tag, tag, redelivered, msg->exchange(), msg->routing_key()},
                 msg->raw_properties(), msg->body(), conn_.frame_max());
  conn_.output_added();
}

void Channel::request_dispatch_all() {
  for (auto& [tag, c] : consumers_)
    if (c->queue) c->queue->request_dispatch();
}

// ---- basic.get ----

Status Channel::on(const BasicGet& m) {
  auto qname = queue_name(m.queue);
  if (!qname) return qname.error();
  if (Status s = require(conn_, Permission::kRead, "queue", *qname)) return s;
  auto q = conn_.vhost().usable_queue(*qname, conn_.id());
  if (!q) return q.error();
  broker::QueuedMessage qm = (*q)->pop(&identity_);
  if (!qm.msg) {
    conn_.broker().count_get_empty(**q, &deliveries_.stats());
    send(BasicGetEmpty{});
    return std::nullopt;
  }
  broker::MessageRef msg = qm.msg;
  bool redelivered = qm.redelivered;
  uint64_t tag = deliveries_.delivered(nullptr, *q, std::move(qm), m.no_ack);
  std::string& out = conn_.out();
  write_method(out, id_,
               BasicGetOk{tag, redelivered, msg->exchange(), msg->routing_key(),
                          static_cast<uint32_t>((*q)->message_count())});
  write_content_header(out, id_, msg->body_size(), msg->raw_properties());
  write_body(out, id_, msg->body(), conn_.frame_max());
  conn_.output_added();
  return std::nullopt;
}

// ---- acknowledgements ----

Status Channel::settle(uint64_t tag, bool multiple, broker::Settlement how) {
  if (tx_mode_) {
    // Recorded now (so a second ack of the same tag is still an error), applied at commit.
    return deliveries_.defer(tag, multiple, how, &tx_settlements_);
  }
  if (broker::Status st = deliveries_.settle(tag, multiple, how)) return *st;
  if (deliveries_.has_channel_prefetch()) request_dispatch_all();
  return std::nullopt;
}

namespace {
broker::Settlement settlement(bool requeue) {
  return requeue ? broker::Settlement::kRequeue : broker::Settlement::kReject;
}
}  // namespace

Status Channel::on(const BasicAck& m) {
  return settle(m.delivery_tag, m.multiple, broker::Settlement::kAck);
}

Status Channel::on(const BasicNack& m) {
  return settle(m.delivery_tag, m.multiple, settlement(m.requeue));
}

Status Channel::on(const BasicReject& m) {
  return settle(m.delivery_tag, false, settlement(m.requeue));
}

Status Channel::on(const BasicRecoverAsync& m) {
  deliveries_.requeue_all();
  return std::nullopt;
}

Status Channel::on(const BasicRecover& m) {
  if (!m.requeue) return amqp_error(kNotImplemented, "requeue=false");
  deliveries_.requeue_all();
  send(BasicRecoverOk{});
  return std::nullopt;
}

// ---- publish ----

Status Channel::on(const BasicPublish& m) {
  if (m.immediate) return amqp_error(kNotImplemented, "immediate=true");
  publish_exchange_.assign(m.exchange);
  publish_routing_key_.assign(m.routing_key);
  publish_mandatory_ = m.mandatory;
  assembly_ = Assembly::kHeader;
  return std::nullopt;
}

Status Channel::handle_header(std::string_view payload) {
  if (assembly_ == Assembly::kBody) return content_error("content body", "non content body frame");
  if (assembly_ == Assembly::kIdle)
    return amqp_error(kUnexpectedFrame, "expected method frame, got non method frame instead");
  Reader r(payload);
  uint16_t class_id = r.u16();
  r.u16();  // weight
  uint64_t body_size = r.u64();
  std::string_view raw_props(reinterpret_cast<const char*>(r.position()), r.remaining());
  BasicProperties props;
  if (class_id != kBasicClass)
    return content_error("content header for class 60",
                         fmt::format("content header for class {}", class_id));
  if (!r.ok() || !props.decode(r))
    return with_method(amqp_error(kFrameError, "malformed content header frame"), kBasicClass,
                       BasicPublish::kMethodId);
  auto& limits = conn_.broker().limits();
  if (body_size > limits.max_message_size) {
    assembly_ = Assembly::kIdle;
    return with_method(amqp_error(kPreconditionFailed,
                                  "message size {} is larger than configured max size {}",
                                  body_size, limits.max_message_size),
                       kBasicClass, BasicPublish::kMethodId);
  }
  if (props.has_user_id() && props.user_id != conn_.user()) {
    assembly_ = Assembly::kIdle;
    return with_method(
        amqp_error(kPreconditionFailed,
                   "user_id property set to '{}' but authenticated user was '{}'", props.user_id,
                   conn_.user()),
        kBasicClass, BasicPublish::kMethodId);
  }
  publish_expiration_ms_ = -1;
  if (props.has_expiration()) {
    std::string reason;
    if (!broker::parse_expiration(props.expiration, &publish_expiration_ms_, &reason)) {
      assembly_ = Assembly::kIdle;
      return with_method(amqp_error(kPreconditionFailed, "invalid expiration '{}': {}",
                                    props.expiration, reason),
                         kBasicClass, BasicPublish::kMethodId);
    }
  }
  if (props.has_reply_to() && props.reply_to == kReplyToQueue) {
    // Direct reply-to: give the responder an address that routes straight back to this channel.
    if (reply_token_.empty()) {
      assembly_ = Assembly::kIdle;
      return with_method(amqp_error(kPreconditionFailed, "fast reply consumer does not exist"),
                         kBasicClass, BasicPublish::kMethodId);
    }
    std::string reply_to = fmt::format("{}.{}", kReplyToQueue, reply_token_);
    props.reply_to = reply_to;
    publish_properties_.clear();
    Writer w(publish_properties_);
    props.encode(w);
  } else {
    publish_properties_.assign(raw_props);
  }
  // Nothing is allocated for the body yet: memory follows the bytes that actually arrive, not
  // the size a header announces.
  publish_body_size_ = body_size;
  publish_delivery_mode_ = props.has_delivery_mode() ? props.delivery_mode : 0;
  publish_priority_ = props.has_priority() ? props.priority : 0;
  if (body_size == 0) {
    make_publish_message({});
    return finish_publish();
  }
  assembly_ = Assembly::kBody;
  return std::nullopt;
}

void Channel::make_publish_message(std::string_view body) {
  publish_message_ = broker::Message::create(publish_exchange_, publish_routing_key_,
                                             publish_properties_, publish_body_size_);
  publish_message_->append_body(body);
  publish_message_->delivery_mode = publish_delivery_mode_;
  publish_message_->priority = publish_priority_;
  publish_message_->expiration_ms = publish_expiration_ms_;
}

Status Channel::handle_body(std::string_view payload) {
  if (assembly_ == Assembly::kHeader)
    return content_error("content header for class 60", "non content header frame");
  if (assembly_ == Assembly::kIdle)
    return amqp_error(kUnexpectedFrame, "expected method frame, got non method frame instead");
  if (payload.size() > publish_body_size_ - publish_body_.size())
    return with_method(amqp_error(kFrameError, "content body is larger than its header announced"),
                       kBasicClass, BasicPublish::kMethodId);
  if (publish_body_.empty() && payload.size() == publish_body_size_) {
    // The common case, a body in one frame: copied once, straight into the message.
    make_publish_message(payload);
    return finish_publish();
  }
  publish_body_.append(payload);
  if (publish_body_.size() < publish_body_size_) return std::nullopt;
  make_publish_message(publish_body_);
  publish_body_.clear();
  if (publish_body_.capacity() > (1u << 20)) std::string().swap(publish_body_);
  return finish_publish();
}

Status Channel::finish_publish() {
  assembly_ = Assembly::kIdle;
  broker::MessageRef msg = std::move(publish_message_);
  // Write permission on the exchange, remembered for the last exchange until permissions change
  // (a regex per message would cost more than routing it).
  const uint64_t generation = conn_.broker().access_control().generation();
  if (generation != write_permitted_generation_ || publish_exchange_ != write_permitted_exchange_) {
    if (Status s = require(conn_, Permission::kWrite, "exchange", publish_exchange_)) {
      s->class_id = kBasicClass;
      s->method_id = BasicPublish::kMethodId;
      return s;
    }
    write_permitted_generation_ = generation;
    write_permitted_exchange_ = publish_exchange_;
    // Most users have no topic permissions: then no routing key is matched against anything.
    topic_checks_apply_ =
        conn_.broker().topic_checks_apply(conn_.user(), conn_.vhost().name());
  }
  if (!publish_exchange_.empty()) {  // the default exchange always exists
    auto x = conn_.vhost().publishable_exchange(publish_exchange_);
    if (!x) {
      AmqpError e(x.error());
      e.class_id = kBasicClass;
      e.method_id = BasicPublish::kMethodId;
      return e;
    }
    // After the exchange's own checks, as rabbit_channel: write on the routing key.
    if (topic_checks_apply_)
      if (broker::Status s = conn_.broker().check_topic_access_on(
              *x, conn_.user(), conn_.vhost().name(), Permission::kWrite, msg->routing_key())) {
        AmqpError e(*s);
        e.class_id = kBasicClass;
        e.method_id = BasicPublish::kMethodId;
        return e;
      }
  }
  if (tx_mode_) {
    // Published at tx.commit, dropped at tx.rollback.
    tx_publishes_.push_back(TxPublish{std::move(msg), publish_mandatory_});
    return std::nullopt;
  }
  publish(std::move(msg), publish_mandatory_);
  after_publish();
  return std::nullopt;
}

broker::PublishOutcome Channel::publish(broker::MessageRef msg, bool mandatory) {
  if (confirm_mode_) {
    ++publish_seq_;
    conn_.confirm_pending(this);
  }
  // Kept for a basic.return: the publish path may hand the message on.
  broker::MessageRef kept = mandatory ? msg : broker::MessageRef();
  broker::PublishRequest request{std::move(msg), mandatory, &conn_.flow()};
  request.publisher = &identity_;
  broker::PublishOutcome outcome = conn_.vhost().publish(request);
  conn_.broker().count_publish(conn_.vhost(), outcome, &deliveries_.stats());
  if (outcome.returned) {
    std::string& out = conn_.out();
    write_method(out, id_,
                 BasicReturn{kReplyNoRoute, "NO_ROUTE", kept->exchange(), kept->routing_key()});
    write_content_header(out, id_, kept->body_size(), kept->raw_properties());
    write_body(out, id_, kept->body(), conn_.frame_max());
    conn_.output_added();
  }
  if (confirm_mode_) {
    confirms_.published(publish_seq_, outcome);
    if (outcome.must_wait_for_disk()) conn_.broker().wait_for_journal(this);
  }
  return outcome;
}

void Channel::after_publish() {
  broker::Broker& b = conn_.broker();
  if (b.publishing_blocked()) conn_.block_for_alarm(b.alarm_reason());
}

void Channel::write_confirms() {
  if (closing_) return;
  std::string& out = conn_.out();
  uint64_t before = confirms_.confirmed();
  confirms_.take_due(
      publish_seq_,
      [&](uint64_t tag, bool multiple) { write_method(out, id_, BasicAck{tag, multiple}); },
      [&](uint64_t tag) { write_method(out, id_, BasicNack{tag, false, false}); });
  if (uint64_t n = confirms_.confirmed() - before)
    conn_.broker().count_confirms(conn_.vhost(), n, &deliveries_.stats());
}

bool Channel::journal_synced(const store::Completion& c) {
  if (confirms_.journal_synced(c)) conn_.confirm_pending(this);
  if (commit_journal_seq_ != 0 && commit_journal_seq_ <= c.last_seq) {
    commit_journal_seq_ = 0;
    conn_.hold_reading(false);
    if (closing_) {
    } else if (c.error) {
      conn_.fail_channel(id_, amqp_error(kInternalError, "cannot store the transaction's "
                                         "persistent messages: {}", c.error.message()));
    } else {
      send(TxCommitOk{});
    }
  }
  return commit_journal_seq_ != 0 || confirms_.waits_beyond(c.last_seq);
}

// ---- confirm / tx ----

Status Channel::on(const ConfirmSelect& m) {
  if (tx_mode_) return amqp_error(kPreconditionFailed, "cannot switch from tx to confirm mode");
  confirm_mode_ = true;
  if (!m.nowait) send(ConfirmSelectOk{});
  return std::nullopt;
}

Status Channel::on(const TxSelect&) {
  if (confirm_mode_) return amqp_error(kPreconditionFailed, "cannot switch from confirm to tx mode");
  tx_mode_ = true;
  send(TxSelectOk{});
  return std::nullopt;
}

Status Channel::on(const TxCommit&) {
  if (!tx_mode_) return amqp_error(kPreconditionFailed, "channel is not transactional");
  std::vector<TxPublish> publishes;
  publishes.swap(tx_publishes_);
  uint64_t journal_seq = 0;
  bool journal_failed = false;
  bool rejected = false;
  for (TxPublish& p : publishes) {
    broker::PublishOutcome o = publish(std::move(p.msg), p.mandatory);
    journal_seq = std::max(journal_seq, o.journal_seq);
    journal_failed |= o.journal_failed;
    rejected |= o.rejected;
  }
  std::vector<broker::DeliveryTracker::Deferred> settlements;
  settlements.swap(tx_settlements_);
  for (const auto& d : settlements) deliveries_.apply(d);
  if (!settlements.empty() && deliveries_.has_channel_prefetch()) request_dispatch_all();
  if (!publishes.empty()) after_publish();
  if (journal_failed)
    return amqp_error(kInternalError, "cannot store the transaction's persistent messages");
  // A queue refused a message (x-overflow reject-publish): as RabbitMQ, the commit fails and the
  // channel closes, the other messages and the acknowledgements staying committed.
  if (rejected) return amqp_error(kPreconditionFailed, "partial tx completion");
  if (journal_seq != 0) {
    // commit-ok means the persistent messages are on disk. Nothing more is read from this
    // connection until then, so replies keep their order.
    commit_journal_seq_ = journal_seq;
    conn_.hold_reading(true);
    conn_.broker().wait_for_journal(this);
    return std::nullopt;
  }
  send(TxCommitOk{});
  return std::nullopt;
}

Status Channel::on(const TxRollback&) {
  if (!tx_mode_) return amqp_error(kPreconditionFailed, "channel is not transactional");
  tx_publishes_.clear();
  for (const auto& d : tx_settlements_) deliveries_.restore(d);
  tx_settlements_.clear();
  send(TxRollbackOk{});
  return std::nullopt;
}

// ---- lifecycle ----

void Channel::begin_close() {
  closing_ = true;
  assembly_ = Assembly::kIdle;
  publish_message_.reset();
  std::string().swap(publish_body_);
  shutdown();
}

void Channel::shutdown() {
  std::vector<std::string> tags;
  tags.reserve(consumers_.size());
  for (auto& [tag, c] : consumers_) tags.push_back(tag);
  for (const std::string& tag : tags) remove_consumer(tag, false);
  deliveries_.requeue_all();
}


broker::ChannelInfo Channel::info() const {
  broker::ChannelInfo i;
  i.number = id_;
  i.consumer_count = consumers_.size();
  i.messages_unacknowledged = deliveries_.outstanding();
  i.prefetch_count = deliveries_.consumer_prefetch();
  i.confirm = confirm_mode_;
  i.transactional = tx_mode_;
  i.sink = this;
  i.stats = &deliveries_.stats();
  return i;
}

}  // namespace warren::amqp
