// The STOMP session of one connection, RabbitMQ's rabbit_stomp_processor over Warren's core:
// CONNECT and version negotiation, destinations declared and bound through the vhost, SEND
// through the one publish path (VHost::publish) with receipts sent once the publish is
// confirmed, subscriptions as broker consumers with their unacknowledged deliveries in a
// DeliveryTracker, ACK/NACK, transactions (frames buffered until COMMIT) and ERROR frames with
// RabbitMQ's texts. All output goes to the connection's buffer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broker/broker.h"
#include "broker/client_identity.h"
#include "broker/confirm_tracker.h"
#include "broker/delivery_tracker.h"
#include "stomp/destination.h"
#include "stomp/frame.h"
#include "stomp/settings.h"
#include "stomp/stomp_error.h"

namespace warren::stomp {

class Connection;

// What the connection does after a frame was handled.
enum class AfterFrame {
  kContinue,
  kCloseAfterFlush,  // DISCONNECT, or a fatal error: send what is buffered, then close
  kCloseNow,         // what RabbitMQ answers by dropping the connection (a second CONNECT)
};

class Session : public broker::DeliverySink, public broker::JournalWaiter {
 public:
  Session(Connection& conn, const Settings& settings);
  ~Session() override;

  AfterFrame handle(Frame& frame);
  bool logged_in() const { return vhost_ != nullptr; }
  const std::string& user() const { return user_; }
  broker::VHost* vhost() { return vhost_; }
  const std::string& version() const { return version_; }
  // Negotiated heart-beats in milliseconds (0 = none): how often we send, how often we expect.
  uint32_t send_heartbeat_ms() const { return send_heartbeat_ms_; }
  uint32_t receive_heartbeat_ms() const { return receive_heartbeat_ms_; }
  // Writes the RECEIPTs of SENDs that became confirmed (called when output is flushed).
  void write_receipts();
  // Cancels the subscriptions and requeues unacknowledged deliveries (connection closing).
  void shutdown();
  broker::ChannelInfo info() const;
  broker::ObjectStats& stats() { return deliveries_.stats(); }

  // DeliverySink
  bool can_deliver(const broker::Consumer& c) const override;
  void deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) override;
  void cancelled_by_broker(broker::Consumer& c) override;
  const broker::ClientIdentity* identity() const override { return &identity_; }
  void request_dispatch_all();
  // JournalWaiter: persistent publishes with a pending receipt became durable.
  bool journal_synced(const store::Completion& c) override;

 private:
  struct Subscription {
    std::string destination;  // the SUBSCRIBE's destination header
    bool client_ack = false;  // ack:client or client-individual (else auto)
    bool multi_ack = false;   // ack:client acknowledges cumulatively
    std::string description;  // "id='x'" / "destination='/queue/x'" for error texts
    std::unique_ptr<broker::Consumer> consumer;
  };
  // A SEND or ACK/NACK of a transaction, applied at COMMIT.
  struct PendingPublish {
    broker::MessageRef message;
    std::optional<std::string> receipt;
  };
  struct PendingSettlement {
    uint64_t tag;
    bool multiple;
    broker::Settlement how;
  };
  using TransactionAction = std::variant<PendingPublish, PendingSettlement>;

  // implicit: stomp.implicit_connect logs in for a first frame that is not CONNECT (no
  // CONNECTED frame is sent).
  AfterFrame connect(Frame& frame, bool implicit = false);
  StompStatus dispatch(const std::string& command, Frame& frame, AfterFrame* after);
  StompStatus subscribe(const Frame& f);
  StompStatus unsubscribe(const Frame& f);
  StompStatus send(const Frame& f);
  StompStatus ack(const Frame& f, bool positive);
  StompStatus transaction_command(const Frame& f, const std::string& command);

  // rabbit_routing_util:ensure_endpoint: the queue a SUBSCRIBE consumes from (declared and named
  // as RabbitMQ does) or, for a SEND, declares a /queue/ destination the first time.
  Result<std::string, StompError> subscription_queue(const Destination& d, const Frame& f);
  StompStatus declare_destination_queue(const Destination& d, const Frame& f);
  // A /temp-queue/ reply-to: this session's exclusive reply queue for that name.
  Result<std::string, StompError> temp_reply_queue(const std::string& id);
  StompStatus consume(const std::string& queue, const std::string& tag, bool no_ack,
                      Subscription sub);
  StompStatus publish(broker::MessageRef msg, const std::optional<std::string>& receipt);
  StompStatus settle(uint64_t tag, bool multiple, broker::Settlement how);
  void remove_subscription(const std::string& tag);
  StompStatus require(auth::Permission what, std::string_view kind, std::string_view name);
  StompStatus require_topic(auth::Permission what, std::string_view exchange,
                            std::string_view routing_key);

  void write(std::string_view command, const std::vector<Header>& headers,
             std::string_view body = {});
  void write_error(const StompError& e, const std::vector<Header>& extra = {});
  void write_receipt(const std::string& id);

  Connection& conn_;
  const Settings& settings_;
  broker::VHost* vhost_ = nullptr;
  std::string user_;
  std::string connection_name_;  // "peer:port -> host:port", set with user_
  broker::ClientIdentity identity_;  // views of user_ and connection_name_ (firehose)
  std::string version_;
  std::string session_id_;
  uint32_t send_heartbeat_ms_ = 0, receive_heartbeat_ms_ = 0;

  // By consumer tag: "T_<id>", or "Q_<destination>" for a 1.0 SUBSCRIBE without an id.
  std::map<std::string, Subscription> subscriptions_;
  std::set<std::string> declared_queues_;  // /queue/ destinations declared on this connection
  std::unordered_map<std::string, std::string> reply_queues_;  // temp-queue id -> queue
  std::unordered_map<std::string, std::vector<TransactionAction>> transactions_;

  // Receipts of SENDs: as RabbitMQ, the first SEND with a receipt turns on publisher confirms
  // and every publish from then on is numbered; a receipt goes out once its publish is
  // confirmed (routed, and on disk if persistent and queued durably).
  bool confirm_mode_ = false;
  uint64_t publish_seq_ = 0;
  broker::ConfirmTracker confirms_;
  std::map<uint64_t, std::string> pending_receipts_;

  // Declared after the subscriptions (whose consumers its entries point to): destroyed first.
  broker::DeliveryTracker deliveries_;
};

}  // namespace warren::stomp
