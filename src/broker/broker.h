// The broker: vhosts, users, limits, and the end-of-turn work queue that batches dispatch and
// socket flushes (all on one io thread; no locks on the message path).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "auth/user_store.h"
#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker/vhost.h"

namespace warren::broker {

struct Limits {
  uint32_t frame_max = 131072;       // proposed in connection.tune (RabbitMQ's default)
  uint16_t channel_max = 2047;       // RabbitMQ's default
  uint16_t heartbeat = 60;           // seconds, proposed in connection.tune
  uint64_t max_message_size = 134217728;  // 128 MiB, RabbitMQ's default
  size_t output_high_water = 1 << 20;     // stop delivering to a socket with this much unsent
};

// Something with buffered output to write at the end of the current event-loop turn.
class OutputFlusher {
 public:
  virtual ~OutputFlusher() = default;
  virtual void flush_output() = 0;
  bool flush_scheduled = false;
};

class Broker : public DispatchScheduler {
 public:
  Broker(boost::asio::io_context& io, Limits limits, auth::UserStore users);
  ~Broker() override;

  boost::asio::io_context& io() { return io_; }
  const Limits& limits() const { return limits_; }
  auth::UserStore& users() { return users_; }

  VHost* find_vhost(std::string_view name);
  VHost& add_vhost(std::string name);

  uint64_t next_connection_id() { return ++last_connection_id_; }

  void schedule_dispatch(Queue& q) override;
  void schedule_flush(std::shared_ptr<OutputFlusher> f);

 private:
  void schedule_drain();
  // Runs once per event-loop turn after the handlers that produced work: dispatches queues with
  // new messages or consumer credit, then writes every socket with pending output.
  void drain();

  boost::asio::io_context& io_;
  Limits limits_;
  auth::UserStore users_;
  std::unordered_map<std::string, std::unique_ptr<VHost>, StringHash, std::equal_to<>> vhosts_;
  std::vector<QueueRef> dirty_queues_;
  std::vector<QueueRef> dispatching_;
  std::vector<std::shared_ptr<OutputFlusher>> dirty_flushers_;
  std::vector<std::shared_ptr<OutputFlusher>> flushing_;
  bool drain_scheduled_ = false;
  uint64_t last_connection_id_ = 0;
};

}  // namespace warren::broker
