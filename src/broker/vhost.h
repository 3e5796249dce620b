// A virtual host: its exchanges, queues and bindings, the declare/delete/bind operations with
// RabbitMQ's checks and reply codes, and routing of a published message to queues.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/field_table.h"
#include "broker/delayed_exchange.h"
#include "broker/error.h"
#include "broker/exchange.h"
#include "broker/policy.h"
#include "broker/publish.h"
#include "broker/queue.h"
#include "broker/reply_consumers.h"
#include "store/metadata_store.h"

namespace warren::broker {

class Firehose;

struct ExchangeDeclare {
  std::string_view name;
  std::string_view type;
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  FieldTable arguments;
};

struct QueueDeclare {
  std::string_view name;
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  FieldTable arguments;
  // name came from generate_queue_name() (a declare with an empty name), so its amq.gen- prefix
  // is not a client using a reserved name.
  bool server_named = false;
};

struct QueueDeclareOk {
  std::string name;
  uint32_t message_count = 0;
  uint32_t consumer_count = 0;
};

class VHost {
 public:
  // metadata, when set, receives every change to durable definitions before the operation
  // succeeds (a declare-ok means the definition is on disk).
  // journal, when set, stores the persistent messages of durable queues.
  VHost(std::string name, DispatchScheduler* scheduler, store::MetadataStore* metadata = nullptr,
        MessageJournal* journal = nullptr);

  // Recreates this vhost's durable exchanges, queues and bindings from the metadata store.
  void restore(const store::Definitions& definitions);
  // This vhost's stored policies (called by restore() before the objects they apply to).
  void restore_policies(const std::vector<store::PolicyRecord>& records);
  ~VHost();

  const std::string& name() const { return name_; }
  // A fresh server-generated queue name (amq.gen-...), for queue.declare with an empty name.
  std::string generate_queue_name();

  // Limits (rabbitmqctl set_vhost_limits); -1 = none. open_connections counts connections that
  // completed connection.open on this vhost.
  int64_t max_connections = -1;
  int64_t max_queues = -1;
  size_t open_connections = 0;

  Exchange* find_exchange(std::string_view name);
  Queue* find_queue(std::string_view name);
  // The queue if it exists and the connection may use it: 404 if missing, 405 if exclusive to
  // another connection.
  OpResult<Queue*> usable_queue(std::string_view name, uint64_t connection_id);

  Status declare_exchange(const ExchangeDeclare& d);
  Status delete_exchange(std::string_view name, bool if_unused);
  OpResult<QueueDeclareOk> declare_queue(const QueueDeclare& d, uint64_t connection_id);
  // Sets (or, with no value, removes) one declared argument of an existing queue, stored for a
  // durable queue and applied at once as a policy change is (RabbitMQ's amqqueue:update with
  // policy_changed; MQTT changes a session's x-expires this way).
  Status set_queue_argument(Queue& q, std::string_view key, std::optional<FieldValue> value);
  OpResult<uint32_t> delete_queue(std::string_view name, bool if_unused, bool if_empty,
                                  uint64_t connection_id);
  OpResult<uint32_t> purge_queue(std::string_view name, uint64_t connection_id);
  Status bind_queue(std::string_view queue, std::string_view exchange, std::string_view key,
                    const FieldTable& args, uint64_t connection_id);
  Status unbind_queue(std::string_view queue, std::string_view exchange, std::string_view key,
                      const FieldTable& args, uint64_t connection_id);
  Status bind_exchange(std::string_view dest, std::string_view source, std::string_view key,
                       const FieldTable& args);
  Status unbind_exchange(std::string_view dest, std::string_view source, std::string_view key,
                         const FieldTable& args);

  // Removes a queue: its bindings go, its consumers are cancelled by the broker.
  void remove_queue(Queue* q);
  // Deletes the exclusive queues owned by a closing connection.
  void connection_closed(uint64_t connection_id);

  // Policies (policy.h), for warrenctl set_policy/clear_policy/list_policies, definitions
  // import/export and the management API:
  //   auto p = make_policy(name, pattern, definition_json, "queues", priority);  // validates
  //   if (!p) -> p.error().text is RabbitMQ's validation text
  //   Status s = vhost.set_policy(std::move(*p));
  // set_policy adds or replaces the policy of that name (written to the metadata store first),
  // then re-resolves every queue's settings and every exchange's alternate exchange at once.
  // clear_policy of a name that does not exist: kNotFound "Parameter does not exist" (as
  // rabbitmqctl). policies() is in the order first set.
  Status set_policy(Policy policy);
  Status clear_policy(std::string_view name);
  const std::vector<Policy>& policies() const { return policies_; }
  // The policy that applies to a queue / exchange (list_queues' `policy` column and, through
  // its definition_json, `effective_policy_definition`); null when none.
  const Policy* policy_for_queue(std::string_view queue) const;
  const Policy* policy_for_exchange(std::string_view exchange) const;
  // Re-resolves every queue's settings and exchange's alternate exchange from the policies (and
  // arguments), enforcing length limits at once. Also called once the journal has restored the
  // messages of durable queues: a policy stored while the broker was down (or a limit lowered)
  // then applies to them, as RabbitMQ's queue init does.
  void apply_policies();

  // Direct reply-to consumers (owned by the broker); without them reply addresses do not route.
  void set_reply_consumers(ReplyConsumers* r) { reply_consumers_ = r; }
  ReplyConsumers* reply_consumers() { return reply_consumers_; }

  // Firehose tracing (firehose.h), null while off: the publish path and the queues' deliveries
  // test only this pointer. start_tracing: node is the node name trace messages carry.
  Firehose* firehose() const { return firehose_.get(); }
  void start_tracing(std::string node);
  void stop_tracing();

  // The exchange a publish names, if it may be published to: 404 if missing, 403 if internal.
  // nullptr is the default exchange.
  OpResult<Exchange*> publishable_exchange(std::string_view name);
  // The publish path of every protocol and of dead-lettering: routes the message (through the
  // exchange named in it, or to a direct reply-to consumer), enqueues it on every matching queue
  // once and applies per-queue flow control to the publisher.
  PublishOutcome publish(PublishRequest& request);
  // A delayed message that is due: routed from the delayed exchange x it waited in (and on
  // through exchange-to-exchange bindings) without being delayed again; nobody is told if it is
  // unroutable. The exchange must exist.
  PublishOutcome publish_delayed(Exchange* x, const MessageRef& msg);
  // The broker's timer for delayed exchanges (without it, delayed messages never become due).
  void set_delay_timer(DelayTimer* t) { delay_timer_ = t; }

  // Routes to the queues bound (directly or through exchange-to-exchange bindings and alternate
  // exchanges) and appends each matching queue once to out. headers() decodes message headers on
  // first use. The exchange must exist.
  template <class HeadersFn>
  void route(Exchange* x, std::string_view routing_key, HeadersFn&& headers,
             std::vector<Queue*>& out);
  void route_default(std::string_view routing_key, std::vector<Queue*>& out);

  const std::unordered_map<std::string, std::unique_ptr<Exchange>, StringHash, std::equal_to<>>&
  exchanges() const { return exchanges_; }
  const std::unordered_map<std::string, QueueRef, StringHash, std::equal_to<>>& queues() const {
    return queues_;
  }
  // The queues' names in byte order (the management API's default sort): a page of 100 out of
  // 100,000 queues, or a list built over many loop turns resuming after the last name listed,
  // needs no sort.
  const std::set<std::string_view>& queue_names() const { return queue_names_; }

  // Message counters of the vhost's channels and queues, and their samples (management rates).
  ObjectStats& stats() { return stats_; }
  const ObjectStats& stats() const { return stats_; }
  // Ready and unacked messages and consumers over every queue, kept as they change.
  const QueueTotals& queue_totals() const { return queue_totals_; }

 private:
  template <class HeadersFn>
  void route_from(Exchange* x, std::string_view routing_key, HeadersFn& headers,
                  std::vector<Queue*>& out, uint64_t mark);
  Exchange* add_exchange(std::string name, ExchangeType type, Exchange::Options options);
  void add_queue(QueueRef q);  // into queues_ and queue_names_
  // The firehose's copy of a client's publish (not the broker's own), once routed.
  [[gnu::noinline]] void trace_published(const PublishRequest& request,
                                         const std::vector<Queue*>& targets);
  // Enqueues a routed message on each target (the tail of publish() and publish_delayed()).
  void enqueue_routed(const std::vector<Queue*>& targets, PublishRequest& request,
                      PublishOutcome& outcome);
  // Deletes the named exchanges that are auto-delete and have no bindings left (by name: one
  // deletion can cascade into another and free an exchange further down the list).
  void auto_delete_unused(const std::vector<std::string>& names);
  // Resolves the settings of one queue / the alternate exchange of one exchange from the
  // policy that applies now; and of every queue and exchange after a policy change.
  void apply_policy(Queue& q);
  void apply_policy(Exchange& x);
  // Maps a metadata write failure to 541 INTERNAL_ERROR (the operation is then not applied).
  Status persisted(const store::Status& s);
  store::BindingRecord binding_record(std::string_view source, std::string_view dest,
                                      bool dest_is_queue, std::string_view key,
                                      const FieldTable& args) const;

  std::string name_;
  DispatchScheduler* scheduler_;
  store::MetadataStore* metadata_;
  MessageJournal* journal_;
  std::unordered_map<std::string, std::unique_ptr<Exchange>, StringHash, std::equal_to<>> exchanges_;
  std::unordered_map<std::string, QueueRef, StringHash, std::equal_to<>> queues_;
  std::set<std::string_view> queue_names_;  // views of queues_' keys
  uint64_t route_epoch_ = 0;
  ReplyConsumers* reply_consumers_ = nullptr;
  std::vector<Queue*> route_scratch_;
  // Set while publish() routes: delayed exchanges it reaches take the message (route_from).
  DelayedRouting* delaying_ = nullptr;
  DelayTimer* delay_timer_ = nullptr;
  std::vector<Policy> policies_;
  ObjectStats stats_;
  QueueTotals queue_totals_;  // queues point here: a VHost never moves (held by unique_ptr)
  Exchange* default_exchange_ = nullptr;  // "" (counted without a lookup per publish)
  std::unique_ptr<Firehose> firehose_;
};

template <class HeadersFn>
void VHost::route(Exchange* x, std::string_view routing_key, HeadersFn&& headers,
                  std::vector<Queue*>& out) {
  route_from(x, routing_key, headers, out, ++route_epoch_);
}

// As RabbitMQ: every exchange reached (the published-to one or through exchange-to-exchange
// bindings) that matches no binding hands the message to its alternate exchange; each exchange
// is visited at most once per publish, so cycles end, and each queue gets the message once.
template <class HeadersFn>
void VHost::route_from(Exchange* x, std::string_view routing_key, HeadersFn& headers,
                       std::vector<Queue*>& out, uint64_t mark) {
  x->route_mark = mark;
  // An x-delayed-message exchange keeps a message that has an x-delay (unless it is being
  // routed because it is due): no binding and no alternate exchange sees it now.
  if (x->delay_store() != nullptr && delaying_ != nullptr && delaying_->take(x, headers())) return;
  bool matched = false;
  x->route(routing_key, headers, [&](const Destination& d) {
    matched = true;
    if (d.queue != nullptr) {
      if (d.queue->route_mark != mark) {
        d.queue->route_mark = mark;
        out.push_back(d.queue);
      }
    } else if (d.exchange->route_mark != mark) {
      route_from(d.exchange, routing_key, headers, out, mark);
    }
  });
  if (!matched && !x->alternate_exchange().empty()) {
    Exchange* ae = find_exchange(x->alternate_exchange());
    if (ae != nullptr && ae->route_mark != mark) route_from(ae, routing_key, headers, out, mark);
  }
}

}  // namespace warren::broker
