// VHost::publish: the one publish path (AMQP basic.publish, tx.commit, dead-lettering, and the
// protocols to come).
#include <optional>

#include "broker/publisher_flow.h"
#include "broker/vhost.h"
#include "common/basic_properties.h"

namespace warren::broker {

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
  } else {
    Exchange* x = find_exchange(exchange);
    if (x == nullptr) {
      // Deleted since the publish was accepted (a transaction commits later): unroutable.
      outcome.dropped_no_exchange = true;
      outcome.returned = request.mandatory;
      return outcome;
    }
    std::optional<FieldTable> headers;
    auto headers_fn = [&]() -> const FieldTable& {
      if (!headers) {
        Reader r(msg->raw_properties());
        BasicProperties p;
        if (p.decode(r) && p.has_headers()) headers = decode_table(p.headers);
        if (!headers) headers.emplace();
      }
      return *headers;
    };
    route(x, msg->routing_key(), headers_fn, targets);
  }
  if (targets.empty()) {
    outcome.returned = request.mandatory;
    return outcome;
  }
  for (Queue* q : targets) {
    if (request.accept && !request.accept(*q)) continue;
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
  return outcome;
}

}  // namespace warren::broker
