// One AMQP client connection: socket I/O with large batched reads and double-buffered writes, the
// handshake (start/tune/open), heartbeats, framing errors and the set of channels.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "amqp/frame.h"
#include "amqp/amqp_error.h"
#include "net/tls_context.h"
#include "amqp/transport.h"
#include "common/read_buffer.h"
#include "broker/broker.h"
#include "broker/publisher_flow.h"

namespace warren::amqp {

using net::TlsContext;
class Channel;

class Connection : public broker::OutputFlusher,
                   public broker::ClientConnection,
                   public std::enable_shared_from_this<Connection> {
 public:
  // tls: the amqps listener's context, or null for plain AMQP.
  Connection(boost::asio::ip::tcp::socket socket, broker::Broker& broker,
             TlsContext* tls = nullptr);
  ~Connection() override;

  void start();

  // For channels.
  broker::Broker& broker() { return broker_; }
  broker::VHost& vhost() { return *vhost_; }
  uint64_t id() const { return id_; }
  const std::string& user() const { return user_; }
  // RabbitMQ's connection name, "peer:port -> host:port" (the firehose's connection header).
  const std::string& name() const { return name_; }
  uint32_t frame_max() const { return frame_max_; }
  bool consumer_cancel_notify() const { return consumer_cancel_notify_; }
  std::string& out() { return out_; }
  // Schedules a flush of out() at the end of this event-loop turn.
  void output_added();
  bool output_blocked() const { return out_.size() >= broker_.limits().output_high_water; }
  void confirm_pending(Channel* ch);
  // A hard error raised while handling a channel method: close the whole connection.
  void close_with_error(const AmqpError& e);
  // A soft error found outside a method handler (e.g. a failed journal sync): close the channel.
  void fail_channel(uint16_t channel_id, const AmqpError& e);
  // Stops (true) or allows again (false) reading requests, e.g. while a tx.commit waits for the
  // disk. Holds nest.
  void hold_reading(bool hold);

  void flush_output() override;
  void force_close(std::string_view reason) override;
  void force_close_with_text(std::string_view text) override;
  std::string_view vhost_name() const override;
  // Per-queue flow control of this connection's publishes (decided by the broker).
  broker::PublisherFlow& flow() { return *flow_; }
  // Resource alarm (memory, disk): stop reading (after telling the client with
  // connection.blocked and the reason).
  void block_for_alarm(std::string_view reason);
  void alarms_cleared() override;
  void reading_may_resume() override { resume_reading(); }
  broker::ConnectionInfo info() const override;
  std::string_view user_name() const override { return user_; }
  size_t channel_count() const override { return channels_.size(); }
  void sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) override;
  void close_by_operator(std::string_view explanation) override;

 private:
  enum class State { kHeader, kStartOk, kSecureOk, kTuneOk, kOpen, kRunning, kClosing, kClosed };

  void start_tls_handshake();
  void start_amqp();
  void read_some();
  void resume_reading();
  // Reading stops while a queue we publish to is full, the memory alarm blocks us, or our own
  // unsent output is over the hard cap (a client that sends requests but does not read replies).
  bool reading_paused() const {
    return flow_->paused() || memory_blocked_ || reading_holds_ > 0 ||
           broker_.journal_backlogged() || out_.size() >= broker_.limits().output_hard_cap;
  }
  void on_read(size_t n);
  // Returns false when the connection stops processing input (closed or closing).
  bool handle_frame(const Frame& f);
  bool handle_protocol_header();
  bool handle_connection_method(uint16_t class_id, uint16_t method_id, Reader& r);
  bool handle_channel_frame(const Frame& f);
  void send_start();
  bool authenticate(std::string_view mechanism, std::string_view response);
  bool update_secret(Reader& r);
  void start_heartbeat();
  void on_heartbeat_tick();
  void write_now();
  void close_socket(const char* why);
  // RabbitMQ's answer to most errors before the connection is open: no connection.close.
  void close_silently(std::string_view why);
  void release_resources();
  // The last channel looked up is remembered: a connection mostly talks on one channel, and the
  // hash lookup per frame showed in profiles.
  Channel* channel(uint16_t id) {
    if (id == last_channel_id_ && last_channel_ != nullptr) return last_channel_;
    return find_channel(id);
  }
  Channel* find_channel(uint16_t id);
  void destroy_channel(uint16_t id);

  Transport transport_;
  TlsContext* tls_;
  // The verified client certificate's CN, the user name of the EXTERNAL mechanism.
  std::optional<std::string> peer_cert_user_;
  bool tls_handshake_done_ = false;
  std::string auth_mechanism_;
  broker::Broker& broker_;
  broker::VHost* vhost_ = nullptr;
  uint64_t id_;
  State state_ = State::kHeader;
  std::string user_;
  std::string peer_;
  std::string peer_host_, local_host_;  // for warrenctl list_connections
  uint16_t peer_port_ = 0, local_port_ = 0;
  std::string client_name_;  // client property connection_name
  std::shared_ptr<const FieldTable> client_properties_;
  uint64_t connected_at_ms_;
  broker::ConnectionTraffic traffic_;
  bool peer_is_loopback_ = false;
  bool consumer_cancel_notify_ = false;

  // RabbitMQ reads frames of up to 4096 bytes (its initial_frame_max) until tune-ok sets it.
  uint32_t frame_max_ = kFrameMinSize;
  uint16_t channel_max_ = 2047;
  uint16_t heartbeat_ = 0;

  ReadBuffer in_;
  size_t in_len_ = 0;
  std::string out_;
  std::string writing_;
  bool write_in_flight_ = false;
  bool close_after_flush_ = false;
  bool resources_released_ = false;
  bool read_in_flight_ = false;
  std::shared_ptr<broker::PublisherFlow> flow_;
  bool memory_blocked_ = false;
  uint32_t reading_holds_ = 0;
  bool client_supports_blocked_ = false;

  // Open channels by number: channel_max limits how many there are, not their numbers.
  std::unordered_map<uint16_t, std::unique_ptr<Channel>> channels_;
  uint16_t last_channel_id_ = 0;
  Channel* last_channel_ = nullptr;  // channels_[last_channel_id_], or null
  std::vector<Channel*> pending_confirms_;

  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer close_timer_;
  std::chrono::steady_clock::time_point last_recv_;
  std::chrono::steady_clock::time_point last_send_;
  std::string name_;  // "peer:port -> host:port" (read only while tracing)
};

}  // namespace warren::amqp
