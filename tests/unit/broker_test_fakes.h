// Test doubles for the broker model: DeliverySinks that record deliveries (one can refuse them,
// one hands them to a DeliveryTracker as a channel does),
// a DispatchScheduler that only records requests (tests call Queue::dispatch() themselves), and a
// FlowControlled publisher that counts unblock notifications.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/field_table.h"
#include "broker/delivery_tracker.h"
#include "broker/message.h"
#include "broker/queue.h"

namespace warren::broker::testing {

struct Delivery {
  std::string tag;
  Queue* queue = nullptr;
  QueuedMessage msg;
  std::string body() const { return std::string(msg.msg->body()); }
};

// Mimics a channel: a consumer can take deliveries while refuse is false and (for prefetch > 0)
// fewer than prefetch deliveries are unacked. deliver() bumps Consumer::unacked.
class FakeSink : public DeliverySink {
 public:
  bool can_deliver(const Consumer& c) const override {
    ++can_deliver_calls;
    if (refuse) return false;
    if (auto it = refused_tags.find(c.tag); it != refused_tags.end() && it->second) return false;
    return c.prefetch == 0 || c.unacked < c.prefetch;
  }
  void deliver(Consumer& c, Queue* q, QueuedMessage&& m) override {
    ++c.unacked;
    deliveries.push_back(Delivery{c.tag, q, std::move(m)});
  }
  void cancelled_by_broker(Consumer& c) override {
    ++cancellations;
    cancelled_tags.push_back(c.tag);
  }

  // The bodies delivered to consumer tag (all consumers when tag is empty), in delivery order.
  std::vector<std::string> bodies(std::string_view tag = {}) const {
    std::vector<std::string> out;
    for (const Delivery& d : deliveries)
      if (tag.empty() || d.tag == tag) out.push_back(d.body());
    return out;
  }
  std::vector<std::string> tags() const {
    std::vector<std::string> out;
    for (const Delivery& d : deliveries) out.push_back(d.tag);
    return out;
  }

  bool refuse = false;
  std::map<std::string, bool, std::less<>> refused_tags;
  mutable int can_deliver_calls = 0;
  std::vector<Delivery> deliveries;
  int cancellations = 0;
  std::vector<std::string> cancelled_tags;
};

// Records requests and, like the real broker, marks the queue as scheduled.
class FakeScheduler : public DispatchScheduler {
 public:
  void schedule_dispatch(Queue& q) override {
    q.dispatch_scheduled = true;
    scheduled.push_back(&q);
  }
  // What the broker does at the end of an event-loop turn.
  size_t run(Queue& q) {
    q.dispatch_scheduled = false;
    return q.dispatch();
  }
  std::vector<Queue*> scheduled;
};

class FakePublisher : public FlowControlled {
 public:
  void unblocked_by(Queue& q) override {
    ++unblocked;
    last_queue = &q;
  }
  int unblocked = 0;
  Queue* last_queue = nullptr;
};

// A sink that records deliveries into a DeliveryTracker, as the AMQP channel does.
class TrackingSink : public DeliverySink {
 public:
  explicit TrackingSink(DeliveryTracker& t) : tracker(t) {}
  bool can_deliver(const Consumer& c) const override { return tracker.can_deliver(c); }
  void deliver(Consumer& c, Queue* q, QueuedMessage&& m) override {
    bodies.emplace_back(m.msg->body());
    tags.push_back(tracker.delivered(&c, q, std::move(m), c.no_ack));
  }
  void cancelled_by_broker(Consumer&) override {}
  DeliveryTracker& tracker;
  std::vector<std::string> bodies;
  std::vector<uint64_t> tags;
};

inline MessageRef make_message(std::string_view body, std::string_view routing_key = "rk",
                               std::string_view exchange = "") {
  MessageRef m = Message::create(exchange, routing_key, "", body.size());
  m->append_body(body);
  return m;
}

inline std::unique_ptr<Consumer> make_consumer(std::string tag, DeliverySink* sink,
                                               uint32_t prefetch = 0, uint64_t connection_id = 1) {
  auto c = std::make_unique<Consumer>();
  c->tag = std::move(tag);
  c->sink = sink;
  c->prefetch = prefetch;
  c->connection_id = connection_id;
  return c;
}

inline FieldTable table(
    std::initializer_list<std::pair<std::string, FieldValue>> entries) {
  FieldTable t;
  for (const auto& [k, v] : entries) t.entries.emplace_back(k, v);
  return t;
}

}  // namespace warren::broker::testing
