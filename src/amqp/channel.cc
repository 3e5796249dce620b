#include "amqp/channel.h"

#include <algorithm>
#include <random>

#include "amqp/connection.h"
#include "broker/vhost.h"

namespace warren::amqp {


namespace {

std::string random_tag(std::string_view prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string tag(prefix);
  for (int i = 0; i < 22; ++i) tag.push_back(kAlphabet[rng() % 64]);
  return tag;
}

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

}  // namespace

Channel::Channel(Connection& conn, uint16_t id) : conn_(conn), id_(id) {}

void Channel::RequeueBatch::add(const broker::QueueRef& q, broker::QueuedMessage m) {
  auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == q; });
  if (g == groups.end()) g = groups.insert(groups.end(), {q, {}});
  g->second.push_back(std::move(m));
}

void Channel::RequeueBatch::apply() {
  for (auto& [q, msgs] : groups) q->requeue(std::move(msgs));
}

std::deque<Channel::Unacked>::iterator Channel::find_unacked(uint64_t tag) {
  // Entries are in tag order: the first with tag >= the requested one.
  return std::lower_bound(unacked_.begin(), unacked_.end(), tag,
                          [](const Unacked& u, uint64_t t) { return u.tag < t; });
}

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

Status Channel::on_malformed_method(uint16_t class_id, uint16_t method_id) {
  return amqp_error(kFrameError, "cannot decode arguments of method {}",
                    method_name(class_id, method_id));
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
  if (Status s = conn_.vhost().declare_exchange(d)) return s;
  if (!m.no_wait) send(ExchangeDeclareOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeDelete& m) {
  if (Status s = conn_.vhost().delete_exchange(m.exchange, m.if_unused)) return s;
  if (!m.no_wait) send(ExchangeDeleteOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeBind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  if (Status s = conn_.vhost().bind_exchange(m.destination, m.source, m.routing_key, *args))
    return s;
  if (!m.no_wait) send(ExchangeBindOk{});
  return std::nullopt;
}

Status Channel::on(const ExchangeUnbind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  if (Status s = conn_.vhost().unbind_exchange(m.destination, m.source, m.routing_key, *args))
    return s;
  if (!m.no_wait) send(ExchangeUnbindOk{});
  return std::nullopt;
}

// ---- queue class ----

Status Channel::on(const QueueDeclare& m) {
  if (m.passive && m.queue.starts_with(kReplyToQueue)) {
    // The direct reply-to pseudo-queue always exists; a reply address while its consumer lives.
    std::string_view rest = m.queue.substr(kReplyToQueue.size());
    bool exists = rest.empty() || (rest.size() > 1 && rest[0] == '.' &&
                                   conn_.broker().find_reply_consumer(rest.substr(1)));
    if (!exists)
      return amqp_error(kNotFound, "no queue '{}' in vhost '{}'", m.queue, conn_.vhost().name());
    if (!m.no_wait) send(QueueDeclareOk{m.queue, 0, 0});
    return std::nullopt;
  }
  auto args = table(m.arguments);
  if (!args) return args.error();
  broker::QueueDeclare d{m.queue, m.passive, m.durable, m.exclusive, m.auto_delete,
                         std::move(*args)};
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
  if (Status s = conn_.vhost().bind_queue(*q, m.exchange, key, *args, conn_.id())) return s;
  if (!m.no_wait) send(QueueBindOk{});
  return std::nullopt;
}

Status Channel::on(const QueueUnbind& m) {
  auto args = table(m.arguments);
  if (!args) return args.error();
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  if (Status s = conn_.vhost().unbind_queue(*q, m.exchange, m.routing_key, *args, conn_.id()))
    return s;
  send(QueueUnbindOk{});
  return std::nullopt;
}

Status Channel::on(const QueuePurge& m) {
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  auto n = conn_.vhost().purge_queue(*q, conn_.id());
  if (!n) return n.error();
  if (!m.no_wait) send(QueuePurgeOk{*n});
  return std::nullopt;
}

Status Channel::on(const QueueDelete& m) {
  auto q = queue_name(m.queue);
  if (!q) return q.error();
  auto n = conn_.vhost().delete_queue(*q, m.if_unused, m.if_empty, conn_.id());
  if (!n) return n.error();
  if (!m.no_wait) send(QueueDeleteOk{*n});
  return std::nullopt;
}

// ---- basic class: qos, consume, cancel ----

Status Channel::on(const BasicQos& m) {
  if (m.prefetch_size != 0)
    return amqp_error(kNotImplemented, "prefetch_size!=0 ({})", m.prefetch_size);
  if (m.global) {
    channel_prefetch_ = m.prefetch_count;
  } else {
    // As RabbitMQ 3.x: a per-consumer qos also lifts a channel-wide limit set earlier.
    consumer_prefetch_ = m.prefetch_count;
    channel_prefetch_ = 0;
  }
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
  auto q = conn_.vhost().usable_queue(*qname, conn_.id());
  if (!q) return q.error();
  broker::Queue* queue = *q;
  std::string tag = m.consumer_tag.empty() ? random_tag("amq.ctag-") : std::string(m.consumer_tag);
  if (consumers_.count(tag))
    return amqp_error(kNotAllowed, "attempt to reuse consumer tag '{}'", tag);
  if (queue->has_exclusive_consumer() || (m.exclusive && queue->consumer_count() > 0))
    return amqp_error(kAccessRefused, "queue '{}' in vhost '{}' in exclusive use", queue->name(),
                      queue->vhost());
  auto c = std::make_unique<broker::Consumer>();
  c->tag = tag;
  c->sink = this;
  c->queue = broker::QueueRef(queue);
  c->connection_id = conn_.id();
  c->no_ack = m.no_ack;
  c->exclusive = m.exclusive;
  c->prefetch = consumer_prefetch_;
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
  conn_.broker().add_reply_consumer(reply_token_, c.get());
  consumers_.emplace(tag, std::move(c));
  if (!m.no_wait) send(BasicConsumeOk{tag});
  return std::nullopt;
}

void Channel::publish_direct_reply(broker::MessageRef msg, std::string_view token) {
  broker::Consumer* c = conn_.broker().find_reply_consumer(token);
  if (c == nullptr) return;  // the requester is gone: the reply is dropped, as in RabbitMQ
  broker::QueuedMessage reply;
  reply.msg = std::move(msg);
  c->sink->deliver(*c, nullptr, std::move(reply));
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
  for (Unacked& u : unacked_)
    if (u.consumer == c.get()) u.consumer = nullptr;
  broker::Queue* q = c->queue.get();
  if (notify_client && conn_.consumer_cancel_notify()) send(BasicCancel{tag, true});
  if (q == nullptr) {  // the direct reply-to consumer
    conn_.broker().remove_reply_consumer(reply_token_);
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
  for (Unacked& u : unacked_)
    if (u.consumer == owned.get()) u.consumer = nullptr;
  if (conn_.consumer_cancel_notify() && !closing_) send(BasicCancel{owned->tag, true});
}

// ---- delivery ----

bool Channel::can_deliver(const broker::Consumer& c) const {
  if (closing_ || conn_.output_blocked()) return false;
  if (c.no_ack) return true;
  if (c.prefetch != 0 && c.unacked >= c.prefetch) return false;
  if (channel_prefetch_ != 0 && consumer_unacked_ >= channel_prefetch_) return false;
  return true;
}

void Channel::deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) {
  uint64_t tag = next_delivery_tag_++;
  const broker::Message& msg = *m.msg;
  std::string& out = conn_.out();
  write_method(out, id_,
               BasicDeliver{c.tag, tag, m.redelivered, msg.exchange(), msg.routing_key()});
  write_content_header(out, id_, msg.body_size(), msg.raw_properties());
  write_body(out, id_, msg.body(), conn_.frame_max());
  conn_.output_added();
  if (c.no_ack) {
    if (q != nullptr) q->discard(m);
    return;
  }
  ++c.unacked;
  ++consumer_unacked_;
  ++channel_unacked_;
  unacked_.push_back(Unacked{tag, std::move(m), broker::QueueRef(q), &c, false});
}

void Channel::request_dispatch_all() {
  for (auto& [tag, c] : consumers_)
    if (c->queue) c->queue->request_dispatch();
}

// ---- basic.get ----

Status Channel::on(const BasicGet& m) {
  auto qname = queue_name(m.queue);
  if (!qname) return qname.error();
  auto q = conn_.vhost().usable_queue(*qname, conn_.id());
  if (!q) return q.error();
  broker::QueuedMessage qm = (*q)->pop();
  if (!qm.msg) {
    send(BasicGetEmpty{});
    return std::nullopt;
  }
  uint64_t tag = next_delivery_tag_++;
  const broker::Message& msg = *qm.msg;
  std::string& out = conn_.out();
  write_method(out, id_,
               BasicGetOk{tag, qm.redelivered, msg.exchange(), msg.routing_key(),
                          static_cast<uint32_t>((*q)->message_count())});
  write_content_header(out, id_, msg.body_size(), msg.raw_properties());
  write_body(out, id_, msg.body(), conn_.frame_max());
  conn_.output_added();
  if (m.no_ack) {
    (*q)->discard(qm);
  } else {
    ++channel_unacked_;
    unacked_.push_back(Unacked{tag, std::move(qm), broker::QueueRef(*q), nullptr, false});
  }
  return std::nullopt;
}

// ---- acknowledgements ----

void Channel::settle_entry(Unacked& u) {
  u.done = true;
  --channel_unacked_;
  if (u.consumer != nullptr) {
    --u.consumer->unacked;
    --consumer_unacked_;
    u.consumer->queue->request_dispatch();
  }
}

Status Channel::settle(uint64_t tag, bool multiple, bool requeue, bool ack) {
  auto it = find_unacked(tag);
  bool exact = it != unacked_.end() && it->tag == tag && !it->done && !it->tx_pending;
  if (!exact && !(multiple && tag == 0))
    return amqp_error(kPreconditionFailed, "unknown delivery tag {}", tag);
  auto begin = multiple ? unacked_.begin() : it;
  auto end = (multiple && tag == 0) ? unacked_.end() : it + 1;
  if (tx_mode_) {
    // Recorded now (so a second ack of the same tag is still an error), applied at commit.
    for (auto e = begin; e != end; ++e) {
      if (e->done || e->tx_pending) continue;
      e->tx_pending = true;
      tx_settlements_.push_back(TxSettlement{e->tag, ack, requeue});
    }
    return std::nullopt;
  }
  apply_settlement(begin, end, requeue, ack);
  return std::nullopt;
}

void Channel::apply_settlement(std::deque<Unacked>::iterator begin,
                               std::deque<Unacked>::iterator end, bool requeue, bool ack) {
  RequeueBatch requeued;
  for (auto e = begin; e != end; ++e) {
    if (e->done || e->tx_pending) continue;
    settle_entry(*e);
    if (!ack && requeue) {
      requeued.add(e->queue, std::move(e->message));
    } else if (e->queue) {
      e->queue->discard(e->message);
    }
    e->message.msg.reset();
    e->queue.reset();
  }
  requeued.apply();
  while (!unacked_.empty() && unacked_.front().done) unacked_.pop_front();
  if (channel_prefetch_ != 0) request_dispatch_all();
}

Status Channel::on(const BasicAck& m) {
  return settle(m.delivery_tag, m.multiple, false, true);
}

Status Channel::on(const BasicNack& m) {
  return settle(m.delivery_tag, m.multiple, m.requeue, false);
}

Status Channel::on(const BasicReject& m) {
  return settle(m.delivery_tag, false, m.requeue, false);
}

void Channel::requeue_all_unacked() {
  RequeueBatch requeued;
  for (Unacked& u : unacked_) {
    if (u.done) continue;
    if (u.consumer != nullptr) --u.consumer->unacked;
    requeued.add(u.queue, std::move(u.message));
  }
  unacked_.clear();
  channel_unacked_ = 0;
  consumer_unacked_ = 0;
  requeued.apply();
}

Status Channel::on(const BasicRecoverAsync& m) {
  requeue_all_unacked();
  return std::nullopt;
}

Status Channel::on(const BasicRecover& m) {
  if (!m.requeue) return amqp_error(kNotImplemented, "requeue=false");
  requeue_all_unacked();
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
  auto fail = [](AmqpError e) -> Status {
    e.class_id = kBasicClass;
    e.method_id = BasicPublish::kMethodId;
    return e;
  };
  broker::VHost& vhost = conn_.vhost();
  broker::Exchange* x = nullptr;
  if (!publish_exchange_.empty()) {
    x = vhost.find_exchange(publish_exchange_);
    if (x == nullptr)
      return fail(amqp_error(kNotFound, "no exchange '{}' in vhost '{}'", publish_exchange_,
                             vhost.name()));
    if (x->options().internal)
      return fail(amqp_error(kAccessRefused, "cannot publish to internal exchange '{}' in vhost '{}'",
                             publish_exchange_, vhost.name()));
  }
  if (tx_mode_) {
    // Routed at tx.commit, dropped at tx.rollback.
    tx_publishes_.push_back(TxPublish{std::move(msg), publish_mandatory_});
    return std::nullopt;
  }
  route_message(std::move(msg), x, publish_mandatory_);
  after_publish();
  return std::nullopt;
}

Channel::Routed Channel::route_message(broker::MessageRef msg, broker::Exchange* x,
                                       bool mandatory) {
  broker::VHost& vhost = conn_.vhost();
  route_scratch_.clear();
  if (confirm_mode_) {
    ++publish_seq_;
    conn_.confirm_pending(this);
  }
  if (x == nullptr) {
    std::string_view rk = msg->routing_key();
    if (rk.size() > kReplyToQueue.size() + 1 && rk.starts_with(kReplyToQueue) &&
        rk[kReplyToQueue.size()] == '.') {
      publish_direct_reply(std::move(msg), rk.substr(kReplyToQueue.size() + 1));
      return {};
    }
    vhost.route_default(rk, route_scratch_);
  } else {
    std::optional<FieldTable> headers;
    auto headers_fn = [&]() -> const FieldTable& {
      if (!headers) {
        Reader r(msg->raw_properties());
        BasicProperties p;
        p.decode(r);
        if (p.has_headers()) headers = decode_table(p.headers);
        if (!headers) headers.emplace();
      }
      return *headers;
    };
    vhost.route(x, msg->routing_key(), headers_fn, route_scratch_);
  }
  if (route_scratch_.empty()) {
    if (mandatory) {
      std::string& out = conn_.out();
      write_method(out, id_,
                   BasicReturn{kReplyNoRoute, "NO_ROUTE", msg->exchange(), msg->routing_key()});
      write_content_header(out, id_, msg->body_size(), msg->raw_properties());
      write_body(out, id_, msg->body(), conn_.frame_max());
      conn_.output_added();
    }
    return {};
  }
  Routed routed;
  for (broker::Queue* q : route_scratch_) {
    broker::Queue::Enqueued e = q->enqueue(msg);
    routed.journal_seq = std::max(routed.journal_seq, e.journal_seq);
    routed.journal_failed |= e.journal_failed;
    if (q->over_high_water()) conn_.block_on(*q);
  }
  if (confirm_mode_ && (routed.journal_seq != 0 || routed.journal_failed)) {
    // Persistent message in a durable queue: confirmed once the journal has synced it.
    auto state = routed.journal_failed ? JournalConfirm::kFailed : JournalConfirm::kWaiting;
    journal_confirms_.push_back(JournalConfirm{publish_seq_, routed.journal_seq, state});
    if (state == JournalConfirm::kWaiting) {
      confirms_wait_for_seq_ = routed.journal_seq;
      conn_.broker().wait_for_journal(this);
    }
  }
  return routed;
}

void Channel::after_publish() {
  broker::Broker& b = conn_.broker();
  if (b.publishing_blocked()) conn_.block_for_alarm(b.alarm_reason());
}

void Channel::ack_confirms_through(uint64_t tag) {
  if (tag <= confirmed_) return;
  write_method(conn_.out(), id_, BasicAck{tag, tag - confirmed_ > 1});
  confirmed_ = tag;
}

void Channel::write_confirms() {
  if (closing_) return;
  while (!journal_confirms_.empty() && journal_confirms_.front().state != JournalConfirm::kWaiting) {
    JournalConfirm p = journal_confirms_.front();
    journal_confirms_.pop_front();
    if (p.state == JournalConfirm::kFailed) {
      ack_confirms_through(p.tag - 1);
      write_method(conn_.out(), id_, BasicNack{p.tag, false, false});
      confirmed_ = p.tag;
    }
  }
  // Confirms go out in tag order: a transient publish after a persistent one that still waits
  // for the disk is confirmed with it.
  ack_confirms_through(journal_confirms_.empty() ? publish_seq_ : journal_confirms_.front().tag - 1);
}

bool Channel::journal_synced(const store::Completion& c) {
  bool resolved = false;
  for (JournalConfirm& p : journal_confirms_) {
    if (p.state != JournalConfirm::kWaiting) continue;
    if (p.journal_seq > c.last_seq) break;
    p.state = c.error ? JournalConfirm::kFailed : JournalConfirm::kSynced;
    resolved = true;
  }
  if (resolved) conn_.confirm_pending(this);
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
  return commit_journal_seq_ != 0 || confirms_wait_for_seq_ > c.last_seq;
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
  Routed routed;
  for (TxPublish& p : publishes) {
    std::string_view name = p.msg->exchange();
    broker::Exchange* x = name.empty() ? nullptr : conn_.vhost().find_exchange(name);
    if (!name.empty() && x == nullptr) continue;  // deleted since the publish: unroutable
    Routed r = route_message(std::move(p.msg), x, p.mandatory);
    routed.journal_seq = std::max(routed.journal_seq, r.journal_seq);
    routed.journal_failed |= r.journal_failed;
  }
  std::vector<TxSettlement> settlements;
  settlements.swap(tx_settlements_);
  for (const TxSettlement& t : settlements) {
    auto it = find_unacked(t.tag);
    if (it == unacked_.end() || it->tag != t.tag || it->done) continue;
    it->tx_pending = false;
    apply_settlement(it, it + 1, t.requeue, t.ack);
  }
  if (!publishes.empty()) after_publish();
  if (routed.journal_failed)
    return amqp_error(kInternalError, "cannot store the transaction's persistent messages");
  if (routed.journal_seq != 0) {
    // commit-ok means the persistent messages are on disk. Nothing more is read from this
    // connection until then, so replies keep their order.
    commit_journal_seq_ = routed.journal_seq;
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
  for (const TxSettlement& t : tx_settlements_) {
    auto it = find_unacked(t.tag);
    if (it != unacked_.end() && it->tag == t.tag) it->tx_pending = false;
  }
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
  requeue_all_unacked();
}

}  // namespace warren::amqp
