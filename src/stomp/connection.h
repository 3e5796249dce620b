// One STOMP client connection: socket I/O (reads into a buffer that grows with the traffic,
// writes batched and flushed once per event-loop turn), frames parsed and handed to the Session,
// heart-beats sent and enforced, the login timeout, flow control and alarms pausing reads, and
// the broker's view of it (listings, forced close on shutdown or vhost deletion).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/broker.h"
#include "common/byte_stream.h"
#include "common/output_buffers.h"
#include "common/socket_ends.h"
#include "broker/publisher_flow.h"
#include "stomp/session.h"
#include "stomp/settings.h"

namespace warren::stomp {

class Connection : public broker::OutputFlusher,
                   public broker::ClientConnection,
                   public std::enable_shared_from_this<Connection> {
 public:
  // settings must outlive the connection (the server's, fixed at start).
  // stream: TCP, or a WebSocket whose upgrade is done (STOMP over WebSocket).
  Connection(std::unique_ptr<ByteStream> stream, broker::Broker& broker,
             const Settings& settings);
  ~Connection() override;

  void start();

  // For the session.
  broker::Broker& broker() { return broker_; }
  uint64_t id() const { return id_; }
  bool peer_is_loopback() const { return ends_.peer_is_loopback; }
  // "peer:port -> host:port", RabbitMQ's connection name (the firehose's `connection` header).
  std::string connection_name() const { return ends_.name(); }
  std::string& out() { return output_.out(); }
  void output_added();
  bool output_blocked() const {
    return output_.out().size() >= broker_.limits().output_high_water;
  }
  // Receipts became due: written with the next flush.
  void confirm_pending();
  broker::PublisherFlow& flow() { return *flow_; }
  // A resource alarm blocks publishers: stop reading until it clears.
  void block_for_alarm() { memory_blocked_ = true; }

  // OutputFlusher / ClientConnection
  void flush_output() override;
  void force_close(std::string_view reason) override;
  void force_close_with_text(std::string_view text) override;
  void close_by_operator(std::string_view explanation) override;
  std::string_view vhost_name() const override;
  void alarms_cleared() override;
  void reading_may_resume() override { resume_reading(); }
  broker::ConnectionInfo info() const override;
  std::string_view user_name() const override { return session_.user(); }
  size_t channel_count() const override { return 1; }
  void sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) override;

 private:
  enum class State { kRunning, kClosing, kClosed };

  void read_some();
  void on_read(size_t n);
  void resume_reading();
  bool reading_paused() const {
    return flow_->paused() || memory_blocked_ || broker_.journal_backlogged() ||
           output_.out().size() >= broker_.limits().output_hard_cap;
  }
  void after_login();
  void arm_heartbeat();
  void on_heartbeat_tick();
  void write_now();
  // Sends what is buffered (an ERROR, a RECEIPT), then closes.
  void close_after_flush(std::string_view why);
  void close_socket(std::string_view why);
  // An ERROR with RabbitMQ's texts for a broker-initiated close, then close.
  void close_with_error(std::string_view message, std::string_view detail);

  std::unique_ptr<ByteStream> stream_;
  broker::Broker& broker_;
  const Settings& settings_;
  uint64_t id_;
  State state_ = State::kRunning;
  std::string peer_;
  SocketEnds ends_;
  uint64_t connected_at_ms_;
  broker::ConnectionTraffic traffic_;

  std::string in_;
  size_t in_len_ = 0;
  bool read_in_flight_ = false;
  OutputBuffers output_;
  bool close_when_flushed_ = false;
  bool receipts_pending_ = false;
  bool memory_blocked_ = false;
  std::shared_ptr<broker::PublisherFlow> flow_;

  Session session_;
  bool heartbeats_started_ = false;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer login_timer_;
  std::chrono::steady_clock::time_point last_recv_, last_send_;
};

}  // namespace warren::stomp
