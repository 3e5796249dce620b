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
  Status on_malformed_method(uint16_t class_id, uint16_t method_id);

 private:
  enum class Assembly { kIdle, kHeader, kBody };

  struct Unacked {
    uint64_t tag = 0;
    broker::QueuedMessage message;
    broker::QueueRef queue;
    broker::Consumer* consumer = nullptr;  // null for basic.get or after the consumer went away
    bool done = false;
    bool tx_pending = false;  // acked/nacked/rejected inside an uncommitted transaction
  };

  // An ack, nack or reject recorded by a transaction, applied at tx.commit.
  struct TxSettlement {
    uint64_t tag;
    bool ack;
    bool requeue;
  };
  struct TxPublish {
    broker::MessageRef msg;
    bool mandatory;
  };

  // Requeued messages grouped per queue, so each queue merges them back in one pass.
  struct RequeueBatch {
    std::vector<std::pair<broker::QueueRef, std::vector<broker::QueuedMessage>>> groups;
    void add(const broker::QueueRef& q, broker::QueuedMessage m);
    void apply();
  };

  // A publish waiting for the journal before it may be confirmed (tags in publish order, so their
  // journal seqs ascend too).
  struct JournalConfirm {
    enum State : uint8_t { kWaiting, kSynced, kFailed };
    uint64_t tag = 0;
    uint64_t journal_seq = 0;
    State state = kWaiting;
  };
  // What routing one message wrote to the journal.
  struct Routed {
    uint64_t journal_seq = 0;  // highest seq written (0: nothing)
    bool journal_failed = false;
  };

  template <class M>
  void send(const M& m);
  void ack_confirms_through(uint64_t tag);
  std::deque<Unacked>::iterator find_unacked(uint64_t tag);
  Status finish_publish();
  void make_publish_message(std::string_view body);
  // Routes a complete message (x null: the default exchange) and enqueues or returns it.
  Routed route_message(broker::MessageRef msg, broker::Exchange* x, bool mandatory);
  void after_publish();
  Status consume_reply_to(const BasicConsume& m);
  void publish_direct_reply(broker::MessageRef msg, std::string_view token);
  Status content_error(std::string_view expected, std::string_view got);
  Status settle(uint64_t tag, bool multiple, bool requeue, bool ack);
  // Acks (or requeues / drops) the unacked entries in [begin, end) that are still outstanding.
  void apply_settlement(std::deque<Unacked>::iterator begin, std::deque<Unacked>::iterator end,
                        bool requeue, bool ack);
  void settle_entry(Unacked& u);
  void requeue_all_unacked();
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
  std::string publish_routing_key_;
  bool publish_mandatory_ = false;
  broker::MessageRef publish_message_;
  std::vector<broker::Queue*> route_scratch_;

  std::unordered_map<std::string, std::unique_ptr<broker::Consumer>> consumers_;
  uint16_t consumer_prefetch_ = 0;  // basic.qos global=false: for consumers created after
  uint32_t channel_prefetch_ = 0;   // basic.qos global=true: shared by the channel's consumers
  uint32_t channel_unacked_ = 0;    // deliveries awaiting ack on this channel (consumers + get)
  uint32_t consumer_unacked_ = 0;   // of which delivered to consumers (counted by global qos)
  std::deque<Unacked> unacked_;
  uint64_t next_delivery_tag_ = 1;

  bool tx_mode_ = false;
  std::vector<TxPublish> tx_publishes_;
  std::vector<TxSettlement> tx_settlements_;

  bool confirm_mode_ = false;
  uint64_t publish_seq_ = 0;
  uint64_t confirmed_ = 0;
  std::deque<JournalConfirm> journal_confirms_;
  uint64_t confirms_wait_for_seq_ = 0;  // highest journal seq a waiting confirm needs
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
};

inline constexpr std::string_view kReplyToQueue = "amq.rabbitmq.reply-to";

}  // namespace warren::amqp
