// One MQTT 3.1, 3.1.1 or 5.0 client connection, as RabbitMQ's rabbitmq_mqtt (3.13 for 5.0)
// serves it, over the broker core: PUBLISH goes through VHost::publish to the configured topic exchange (QoS 1 answered
// with PUBACK once the broker confirms it: routed, and on disk when persistent); each
// subscription is a binding of the client's queue (mqtt-subscription-<id>qos0 or ...qos1) to
// that exchange, consumed through the broker's delivery path, with QoS 1 deliveries settled by
// PUBACK through a DeliveryTracker. Sessions, wills, retained messages and keep-alive are here.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/broker.h"
#include "broker/confirm_tracker.h"
#include "broker/delivery_tracker.h"
#include "broker/publisher_flow.h"
#include "broker/queue.h"
#include "common/byte_stream.h"
#include "common/output_buffers.h"
#include "common/socket_ends.h"
#include "common/read_buffer.h"
#include "mqtt/packet.h"
#include "mqtt/reason_code.h"
#include "mqtt/service.h"

namespace warren::mqtt {

class Connection : public broker::OutputFlusher,
                   public broker::ClientConnection,
                   public broker::DeliverySink,
                   public broker::JournalWaiter,
                   public std::enable_shared_from_this<Connection> {
 public:
  // stream: TCP, TLS after its handshake, or a WebSocket after its upgrade.
  Connection(std::unique_ptr<ByteStream> stream, Service& service);
  ~Connection() override;

  void start();
  // Another connection CONNECTed with this one's client id: this one closes (its will is sent).
  // session_continues: the new connection resumes the session (Clean Start 0), so a will with
  // a delay may still wait; otherwise the will goes out now.
  void taken_over(bool session_continues);
  bool v5() const { return level_ == kLevel5; }

  // broker::OutputFlusher
  void flush_output() override;
  // broker::ClientConnection
  std::string_view vhost_name() const override;
  void force_close(std::string_view reason) override;
  void alarms_cleared() override;
  void reading_may_resume() override { resume_reading(); }
  broker::ConnectionInfo info() const override;
  std::string_view user_name() const override { return user_; }
  size_t channel_count() const override { return state_ == State::kRunning ? 1 : 0; }
  void sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) override;
  // broker::DeliverySink
  bool can_deliver(const broker::Consumer& c) const override;
  void deliver(broker::Consumer& c, broker::Queue* q, broker::QueuedMessage&& m) override;
  void cancelled_by_broker(broker::Consumer& c) override;
  const broker::ClientIdentity* identity() const override { return &identity_; }
  // broker::JournalWaiter
  bool journal_synced(const store::Completion& c) override;

 private:
  enum class State { kConnecting, kRunning, kClosed };
  enum class Qos : uint8_t { k0 = 0, k1 = 1 };
  // A subscription's options (5.0; a 3.1.1 one has only its QoS).
  struct Subscription {
    uint8_t qos = 0;  // granted
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;
    uint32_t id = 0;  // Subscription Identifier; 0 = none
    // Bound with the x-mqtt-subscription-opts argument (a 5.0 session's binding), which a
    // resumed session reads its options back from.
    bool with_options = false;
    bool operator==(const Subscription&) const = default;
  };
  static constexpr uint64_t kNeverExpires = UINT64_MAX;
  // The binding argument holding a 5.0 subscription's options (RabbitMQ 3.13 keeps them in
  // the binding too).
  static constexpr std::string_view kSubscriptionOptionsArgument = "x-mqtt-subscription-opts";

  // ---- I/O (connection.cc)
  std::string& out() { return output_.out(); }
  void read_some();
  void on_read(size_t n);
  void resume_reading();
  bool reading_paused() const;
  // Returns false when the connection stops reading (closed, or a packet made it close).
  bool handle_packet(const FixedHeader& h, std::string_view body);
  void output_added();
  bool output_blocked() const;
  void write_now();
  void start_keepalive();
  // Closes the socket and releases everything; the will is published unless the client said
  // DISCONNECT (or never finished CONNECT).
  void close(std::string_view why, bool send_will = true);
  // 5.0: tells the client why in a DISCONNECT packet first (3.1.1: just closes).
  void disconnect(uint8_t reason, std::string_view why, bool send_will = true);

  // ---- CONNECT (connection_connect.cc)
  bool on_connect(Connect c);
  // Refuses a CONNECT with a 5.0 reason code (mapped to a 3.1.1 return code for 3.1.1).
  bool refuse(uint8_t reason, std::string_view why);
  // The 5.0 reason code refusing the login, or nullopt when the user may use the vhost.
  std::optional<uint8_t> log_in(const Connect& c);
  // The session expiry interval (ms) a CONNECT asks for, capped at the configured maximum.
  uint64_t session_expiry_of(const Connect& c) const;
  // The CONNACK properties of an accepted 5.0 CONNECT.
  std::string connack_properties(const Connect& c, bool assigned_id) const;
  void on_disconnect(const Disconnect& d);
  // Applies the session state of a CONNECT: resumes a persistent session or drops an old one.
  // Returns whether a session was present.
  std::optional<bool> prepare_session();  // nullopt: refused (CONNACK 3)

  // ---- PUBLISH, SUBSCRIBE, deliveries (connection_publish.cc, connection_subscribe.cc,
  // connection_delivery.cc)
  bool on_publish(const Publish& p);
  // Keeps a retained message (with a 5.0 publish's properties and expiry).
  void retain(std::string_view topic, uint8_t qos, std::string_view payload,
              const Properties* properties);
  // The topic a 5.0 PUBLISH names through its Topic Alias (recording a new alias), or the
  // DISCONNECT reason code refusing it.
  Result<std::string_view, uint8_t> resolve_topic_alias(const Publish& p);
  // Publishes an MQTT message through the broker (packet_id != 0: PUBACK it once confirmed).
  // An error is why the connection must close (no write permission, a topic too long).
  // properties: a 5.0 publish's (null: none).
  std::optional<std::string> publish(std::string_view topic, std::string_view payload,
                                     uint8_t qos, bool dup, uint16_t packet_id,
                                     const Properties* properties = nullptr, bool retain = false);
  void on_subscribe(const Subscribe& s);
  void on_unsubscribe(const Unsubscribe& u);
  // reason: 5.0's PUBACK reason code; 0x80 and above refuses the message, which is then
  // discarded (dead-lettered if its queue says so), not sent again [MQTT-4.4.0-2].
  void on_puback(uint16_t packet_id, uint8_t reason = reason::kSuccess);
  // The queue of subscriptions with this QoS, declared and consumed; null if refused.
  broker::Queue* ensure_queue(Qos qos);
  std::string queue_name(Qos qos) const;
  // Why this client may not bind (or unbind) `queue` with `key` to the exchange: write on the
  // queue, read on the exchange, topic read on the key (as an AMQP queue.bind); or nothing.
  broker::Status binding_refused(const std::string& queue, std::string_view key);
  // The binding arguments of a subscription: none for 3.1.1, its options for 5.0.
  static FieldTable binding_arguments(const Subscription& s);
  // Reads the subscriptions of a resumed session back from its queues' bindings.
  void recover_subscriptions();
  // Gives the session's queues the x-expires of session_expiry_ms_ (a resumed session, or a
  // DISCONNECT, may ask for another interval than the queues were declared with).
  void apply_session_expiry();
  void send_retained(const std::string& filter, uint8_t qos);
  uint16_t next_packet_id();
  void write_pubacks();
  // Writes a 5.0 PUBLISH of a delivery; false when it is larger than the client's Maximum
  // Packet Size (it is dropped, as MQTT 5.0 section 3.1.2.11.4 asks).
  // expires_at: the queued message's expiry (steady-clock ms; 0 = none).
  bool write_delivery5(const broker::Message& msg, uint64_t expires_at, uint8_t qos,
                       uint16_t packet_id, bool dup, bool retain,
                       const std::vector<uint32_t>& subscription_ids);

  // ---- will (connection_will.cc)
  void publish_will();
  // 5.0 Will Delay Interval: the will waits in queue mqtt-will-<client id>, which dead-letters
  // it to the exchange when its delay (or the session) ends, as RabbitMQ 3.13 does.
  void schedule_will(const Will& w, const Properties& properties, uint32_t delay_s);
  // A new connection of this client id cancels a will still waiting.
  void cancel_delayed_will();
  std::string will_queue_name() const { return "mqtt-will-" + client_id_; }
  void release_resources();

  Service& service_;
  broker::Broker& broker_;
  std::unique_ptr<ByteStream> stream_;
  uint64_t id_;
  State state_ = State::kConnecting;
  SocketEnds ends_;
  uint64_t connected_at_ms_;
  broker::ConnectionTraffic traffic_;

  // Session
  std::string user_;
  std::string name_;  // "peer:port -> host:port", set with user_
  broker::ClientIdentity identity_;  // views of user_ and name_ (firehose)
  broker::VHost* vhost_ = nullptr;
  std::string client_id_;
  uint8_t level_ = kLevel311;
  bool clean_session_ = true;  // 5.0: Clean Start
  // How long the session outlives the connection: 0 = it ends with it (a 3.1.1 clean
  // session); kNeverExpires = never.
  uint64_t session_expiry_ms_ = 0;
  bool registered_ = false;  // holds client_id_ in the service's session table
  std::optional<Will> will_;
  // False once a new connection took the session over with Clean Start 1: the session ends, so
  // a will with a delay goes out at once.
  bool will_may_wait_ = true;
  uint16_t keep_alive_ = 0;
  // Subscriptions by topic filter (UNSUBSCRIBE finds the queue to unbind from).
  std::map<std::string, Subscription, std::less<>> subscriptions_;
  // Some subscription has an identifier, No Local or Retain As Published: deliveries look up
  // the subscriptions they match.
  bool subscription_options_in_use_ = false;
  // 5.0 limits the client set: the largest packet it takes, and how many topic aliases it
  // accepts from us.
  uint32_t max_packet_out_ = UINT32_MAX;
  uint16_t topic_alias_max_out_ = 0;
  std::unordered_map<std::string, uint16_t> aliases_out_;
  std::vector<std::string> aliases_in_;  // index = alias - 1
  std::unique_ptr<broker::Consumer> consumers_[2];  // by QoS
  broker::DeliveryTracker deliveries_;
  // QoS 1 deliveries awaiting PUBACK: packet id -> delivery tag.
  std::vector<std::pair<uint16_t, uint64_t>> awaiting_puback_;
  uint16_t last_packet_id_ = 0;

  // QoS 1 publishes awaiting the broker's confirm: (confirm tag, packet id) in order.
  broker::ConfirmTracker confirms_;
  struct Unconfirmed {
    uint64_t seq;
    uint16_t packet_id;
    bool unroutable;  // 5.0: PUBACK says "no matching subscribers"
  };
  std::deque<Unconfirmed> unconfirmed_;
  uint64_t publish_seq_ = 0;
  std::shared_ptr<broker::PublisherFlow> flow_;
  bool alarm_blocked_ = false;
  // The permissions generation (auth::AccessControl::generation) at which write on the exchange
  // was last granted; none yet.
  uint64_t write_permitted_generation_ = UINT64_MAX;

  // Socket
  ReadBuffer in_;
  size_t in_len_ = 0;
  OutputBuffers output_;
  bool read_in_flight_ = false;
  bool resources_released_ = false;
  boost::asio::steady_timer timer_;  // login timeout, then keep-alive
  std::chrono::steady_clock::time_point last_recv_;
};

}  // namespace warren::mqtt
