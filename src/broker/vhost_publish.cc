// VHost::publish: the one publish path (AMQP basic.publish, tx.commit, dead-lettering, and the
// protocols to come).
#include <optional>

#include "broker/firehose.h"
#include "broker/publisher_flow.h"
#include "broker/vhost.h"
#include "common/basic_properties.h"

namespace warren::broker {
namespace {

// The message's headers, decoded on first use (only headers exchanges and delayed exchanges
// look at them).
class LazyHeaders {
 public:
  explicit LazyHeaders(const Message& m) : m_(m) {}
  const FieldTable& operator()() {
    if (!headers_) {
      Reader r(m_.raw_properties());
      BasicProperties p;
      if (p.decode(r) && p.has_headers()) headers_ = decode_table(p.headers);
      if (!headers_) headers_.emplace();
    }
    return *headers_;
  }

 private:
  const Message& m_;
  std::optional<FieldTable> headers_;
};

}  // namespace

OpResult<Exchange*> VHost::publishable_exchange(std::string_view name) {
  if (name.empty()) return static_cast<Exchange*>(nullptr);
  Exchange* x = find_exchange(name);
  if (x == nullptr)
    return make_error(ErrorCode::kNotFound, "no exchange '{}' in vhost '{}'", name, name_);
  if (x->options().internal)
    return make_error(ErrorCode::kAccessRefused,
                      "cannot publish to internal exchange '{}' in vhost '{}'", name, name_);
  return x;
}

PublishOutcome VHost::publish(PublishRequest& request) {
  PublishOutcome outcome;
  MessageRef& msg = request.message;
  std::string_view exchange = msg->exchange();
  // The scratch vector is borrowed for this call: a publish that dead-letters (into a publish
  // of its own) must not reuse it while iterating.
  std::vector<Queue*> targets;
  targets.swap(route_scratch_);
  targets.clear();
  struct GiveBack {
    std::vector<Queue*>& from;
    std::vector<Queue*>& to;
    ~GiveBack() {
      from.clear();
      if (from.capacity() > to.capacity()) from.swap(to);
    }
  } give_back{targets, route_scratch_};
  if (exchange.empty()) {
    std::string_view rk = msg->routing_key();
    if (std::string_view token = ReplyConsumers::token_of(rk); !token.empty()) {
      // A reply to a direct reply-to requester goes straight to its consumer; when the requester
      // is gone the address is unroutable, as in RabbitMQ.
      if (firehose_ != nullptr) [[unlikely]] trace_published(request, targets);
      Consumer* c = reply_consumers_ ? reply_consumers_->find(token) : nullptr;
      if (c == nullptr) {
        outcome.returned = request.mandatory;
        return outcome;
      }
      QueuedMessage reply;
      reply.msg = std::move(msg);
      c->sink->deliver(*c, nullptr, std::move(reply));
      outcome.queues = 1;
      return outcome;
    }
    route_default(rk, targets);
    ++default_exchange_->stats().counts.publish_in;
    if (!targets.empty()) ++default_exchange_->stats().counts.publish_out;
  } else {
    Exchange* x = find_exchange(exchange);
    if (x == nullptr) {
      // Deleted since the publish was accepted (a transaction commits later): unroutable.
      outcome.dropped_no_exchange = true;
      outcome.returned = request.mandatory;
      return outcome;
    }
    LazyHeaders headers_fn(*msg);
    // Delayed exchanges reached on the way keep the message for later (delayed_exchange.h).
    DelayedRouting delayed;
    delaying_ = &delayed;
    route(x, msg->routing_key(), headers_fn, targets);
    delaying_ = nullptr;
    ++x->stats().counts.publish_in;
    if (!targets.empty() || !delayed.exchanges.empty()) ++x->stats().counts.publish_out;
    for (Exchange* dx : delayed.exchanges) {
      DelayStore::Added a = dx->delay_store()->add(msg, delayed.delay_ms);
      outcome.journal_failed |= a.journal_failed;
      if (a.journal_failed) continue;
      ++outcome.delayed;
      outcome.journal_seq = std::max(outcome.journal_seq, a.journal_seq);
    }
  }
  // Once routed, as rabbit_channel's tap_in: whether it is then enqueued, returned or refused.
  if (firehose_ != nullptr) [[unlikely]] trace_published(request, targets);
  if (targets.empty()) {
    // A message that waits in a delayed exchange is not returned: whether it routes is decided
    // when it is due (the plugin returns it as NO_ROUTE and delivers it later anyway).
    outcome.returned = request.mandatory && outcome.delayed == 0 && !outcome.journal_failed;
    return outcome;
  }
  enqueue_routed(targets, request, outcome);
  return outcome;
}

// Out of line, so that the publish path keeps its registers for itself while tracing is off.
void VHost::trace_published(const PublishRequest& request, const std::vector<Queue*>& targets) {
  if (request.publisher != nullptr)
    firehose_->published(*request.message, targets, *request.publisher);
}

PublishOutcome VHost::publish_delayed(Exchange* x, const MessageRef& msg) {
  PublishOutcome outcome;
  std::vector<Queue*> targets;
  targets.swap(route_scratch_);
  targets.clear();
  LazyHeaders headers_fn(*msg);
  route(x, msg->routing_key(), headers_fn, targets);
  PublishRequest request;
  request.message = msg;
  enqueue_routed(targets, request, outcome);
  targets.clear();
  if (targets.capacity() > route_scratch_.capacity()) targets.swap(route_scratch_);
  return outcome;
}

void VHost::enqueue_routed(const std::vector<Queue*>& targets, PublishRequest& request,
                           PublishOutcome& outcome) {
  MessageRef& msg = request.message;
  for (Queue* q : targets) {
    if (request.accept != nullptr && !request.accept(request.accept_context, *q)) continue;
    Queue::Enqueued e = q->enqueue(msg);
    if (e.rejected) {
      outcome.rejected = true;
      continue;
    }
    ++outcome.queues;
    outcome.journal_seq = std::max(outcome.journal_seq, e.journal_seq);
    outcome.journal_failed |= e.journal_failed;
    if (request.flow != nullptr) request.flow->published_to(*q);
  }
}

}  // namespace warren::broker
