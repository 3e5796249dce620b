// One AMQP channel: method handlers for exchange/queue/basic/confirm, content assembly for
// publishes, consumers, unacked deliveries and prefetch accounting.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "amqp/frame.h"
#include "amqp/methods.h"
#include "amqp/amqp_error.h"
#include "broker/broker.h"
#include "broker/confirm_tracker.h"
#include "broker/delivery_tracker.h"
#include "broker/message.h"
#include "broker/exchange.h"
#include "broker/queue.h"

namespace warren::amqp {

class Connection;

class Channel : public broker::DeliverySink, public broker::JournalWaiter {
 public:
  Channel(Connection& conn, uint16_t id);
  ~Channel() override;

  uint16_t id() const { return id_; }
  bool closing() const { return closing_; }
  broker::ChannelInfo info() const;  // for warrenctl list_channels
  void sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) {
    deliveries_.stats().sample(now_ms, previous_ms, 0, 0, capacity);
  }

  // Frame handlers; an error is the reply code to close the channel (soft) or connection (hard).
  Status handle_method(uint16_t class_id, uint16_t method_id, Reader& r);
  Status handle_header(std::string_view payload);
  Status handle_body(std::string_view payload);
  bool expecting_content() const { return assembly_ != Assembly::kIdle; }

  // Channel close initiated by us after a soft error: release everything, wait for close-ok.
  void begin_close();
  // Releases consumers and requeues unacked messages (channel or connection closing).
  void shutdown();
  // Writes the publisher confirms that are due: a cumulative basic.ack, and a basic.nack for a
  // publish the journal could not store.
  void write_confirms();
  // JournalWaiter: persistent publishes (confirms, tx.commit) became durable or failed.
  bool journal_synced(const store::Completion& c) override;

  // DeliverySink
  bool can_deliver(const broker::Consumer& c) const override;
  void deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) override;
  void cancelled_by_broker(broker::Consumer& c) override;
  const broker::ClientIdentity* identity() const override { return &identity_; }
  // Asks the queues this channel consumes from to dispatch again (credit or socket space freed).
  void request_dispatch_all();

  // Method handlers (called by dispatch_method).
  Status on(const ChannelOpen&);
  Status on(const ChannelFlow&);
  Status on(const ChannelClose&);
  Status on(const ChannelCloseOk&);
  Status on(const ExchangeDeclare&);
  Status on(const ExchangeDelete&);
  Status on(const ExchangeBind&);
  Status on(const ExchangeUnbind&);
  Status on(const QueueDeclare&);
  Status on(const QueueBind&);
  Status on(const QueueUnbind&);
  Status on(const QueuePurge&);
  Status on(const QueueDelete&);
  Status on(const BasicQos&);
  Status on(const BasicConsume&);
  Status on(const BasicCancel&);
  Status on(const BasicPublish&);
  Status on(const BasicGet&);
  Status on(const BasicAck&);
  Status on(const BasicReject&);
  Status on(const BasicNack&);
  Status on(const BasicRecoverAsync&);
  Status on(const BasicRecover&);
  Status on(const ConfirmSelect&);
  Status on(const TxSelect&);
  Status on(const TxCommit&);
  Status on(const TxRollback&);
  // Methods a client must not send on a channel (server-to-client methods, connection class).
  template <class M>
  Status on(const M&) {
    return amqp_error(kCommandInvalid, "unexpected method {} on channel {}", M::kName, id_);
  }
  Status on_unknown_method(uint16_t class_id, uint16_t method_id);
  Status on_malformed_method(uint16_t class_id, uint16_t method_id, std::string_view args);

 private:
  enum class Assembly { kIdle, kHeader, kBody };

  struct TxPublish {
    broker::MessageRef msg;
    bool mandatory;
  };

  template <class M>
  void send(const M& m);
  Status finish_publish();
  void make_publish_message(std::string_view body);
  // Publishes a complete message through the vhost's publish path; returns it to the client
  // when mandatory and unroutable, and records the confirm.
  broker::PublishOutcome publish(broker::MessageRef msg, bool mandatory);
  void after_publish();
  Status consume_reply_to(const BasicConsume& m);
  Status content_error(std::string_view expected, std::string_view got);
  Status settle(uint64_t tag, bool multiple, broker::Settlement how);
  void remove_consumer(const std::string& tag, bool notify_client);
  // Resolves "" to the channel's most recently declared queue as RabbitMQ does.
  OpResult<std::string> queue_name(std::string_view name) const;
  OpResult<FieldTable> table(std::string_view raw) const;

  Connection& conn_;
  uint16_t id_;
  bool closing_ = false;

  // Publish being assembled from method + header + body frames.
  Assembly assembly_ = Assembly::kIdle;
  std::string publish_exchange_;
  // The last exchange this channel was allowed to publish to, and the permissions generation
  // (auth::AccessControl::generation) of that check.
  std::string write_permitted_exchange_;
  uint64_t write_permitted_generation_ = 0;
  bool topic_checks_apply_ = false;  // the user has topic permissions here (same generation)
  std::string publish_routing_key_;
  bool publish_mandatory_ = false;
  broker::MessageRef publish_message_;

  std::unordered_map<std::string, std::unique_ptr<broker::Consumer>> consumers_;
  // Declared after consumers_: destroyed first, so requeued deliveries find live queues and
  // consumers (the channel's consumers are removed in shutdown() before either goes).
  broker::DeliveryTracker deliveries_;

  bool tx_mode_ = false;
  std::vector<TxPublish> tx_publishes_;
  std::vector<broker::DeliveryTracker::Deferred> tx_settlements_;

  bool confirm_mode_ = false;
  uint64_t publish_seq_ = 0;  // confirm numbering: the delivery tag of the latest publish
  broker::ConfirmTracker confirms_;
  uint64_t commit_journal_seq_ = 0;  // tx.commit-ok waits for this seq to be durable

  std::string last_queue_;
  std::string reply_token_;  // set while this channel consumes amq.rabbitmq.reply-to
  // Content being assembled: properties (as received, or rewritten for direct reply-to) and,
  // for bodies spanning several frames, the bytes received so far.
  std::string publish_properties_;
  std::string publish_body_;
  uint64_t publish_body_size_ = 0;
  uint8_t publish_delivery_mode_ = 0;
  uint8_t publish_priority_ = 0;
  int64_t publish_expiration_ms_ = -1;

  // This channel as the firehose names it: views of the connection's user and name, which do
  // not change once it is open (channels exist only then). Last: read only while tracing, it
  // stays out of the way of the fields the message path uses.
  broker::ClientIdentity identity_;
};

using broker::kReplyToQueue;

}  // namespace warren::amqp
