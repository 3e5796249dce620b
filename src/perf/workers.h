// warren-perf's producers and consumers: each owns one connection and runs on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "perf/connection.h"
#include "perf/histogram.h"

namespace warren::perf {

struct Options {
  std::string uri = "amqp://guest:guest@127.0.0.1:5672/";
  std::string host;  // overrides the URI's host when set
  int port = 0;      // overrides the URI's port when non-zero
  int producers = 1;
  int consumers = 1;
  uint32_t size = 16;
  double rate = 0;  // per producer; 0 = unlimited
  double time = 0;  // seconds; 0 = until the message counts are reached or Ctrl-C
  uint64_t pmessages = 0;
  uint64_t cmessages = 0;
  uint32_t confirm = 0;
  bool persistent = false;
  uint32_t prefetch = 1000;
  uint32_t multi_ack = 100;
  bool autoack = false;
  std::string queue = "perf-test";
  uint32_t queues = 1;
  std::string exchange;  // empty: the default exchange
  std::string exchange_type = "direct";
  bool durable = false;
  bool no_purge = false;
  bool json = false;
  uint32_t frame_max = 0;
  uint16_t heartbeat = 0;
  uint32_t batch_bytes = 64 * 1024;
  // queue.declare arguments (--queue-args), as an encoded field-table body; empty: none.
  std::string queue_args;
  // basic.properties priority (--priority): none when priority_min < 0; a fixed value when
  // priority_min == priority_max, else uniformly random in [priority_min, priority_max].
  int priority_min = -1;
  int priority_max = -1;
  std::string expiration;  // per-message TTL in ms (--expiration); empty: none
};

// Counters of one worker. Each is written by its worker thread only (plain load + store, no
// locked instructions) and read by the reporting thread.
struct alignas(64) WorkerStats {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> confirmed{0};
  std::atomic<uint64_t> nacked{0};
  std::atomic<uint64_t> received{0};
  Histogram latency;          // consumer: publish -> delivery, ns
  Histogram confirm_latency;  // producer: publish -> confirm, ns
  std::atomic<bool> ready{false};     // connected and set up
  std::atomic<bool> finished{false};  // reached its message count
  std::atomic<bool> done{false};      // thread finished
  std::atomic<bool> failed{false};
  std::string error;  // written before failed is set (release)
};

inline void bump(std::atomic<uint64_t>& a, uint64_t n) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

class Worker : public Connection {
 public:
  Worker(ConnParams params, const Options& opts, WorkerStats& stats)
      : Connection(std::move(params)), opts_(opts), stats_(stats) {}
  // Thread body: connect and set up, report ready, then serve until stopped or finished.
  void run();
  // Thread-safe: start the load (start_ns: common start time), or stop it.
  void post_begin(uint64_t start_ns);
  void post_stop();

 protected:
  virtual bool setup() = 0;
  virtual void begin() = 0;
  virtual void stop() { begin_close(); }
  void finish();  // reached the message count: mark finished and close

  const Options& opts_;
  WorkerStats& stats_;
  uint64_t start_ns_ = 0;
  bool running_ = false;
};

class Producer final : public Worker {
 public:
  Producer(ConnParams params, const Options& opts, WorkerStats& stats,
           std::vector<std::string> routing_keys);

 protected:
  bool setup() override;
  void begin() override;
  void stop() override;
  void on_method(uint16_t class_id, uint16_t method_id, Reader& args) override;
  void on_read_done() override;
  void on_write_done() override { pump(); }

 private:
  friend struct ProducerMethods;
  struct Template {
    std::string bytes;  // publish + header + body frames of one message
    size_t body_offset;  // where the body starts in bytes
  };
  void pump();
  void arm_rate_timer(uint64_t at_ns);
  void confirm_upto(uint64_t tag, bool multiple, bool nack);
  void confirm_one(uint64_t seq, bool nack, uint64_t now);
  void check_finished();

  std::vector<std::string> routing_keys_;
  // One template per routing key and priority: templates_[key * priorities_ + priority offset].
  std::vector<Template> templates_;
  size_t next_key_ = 0;
  size_t priorities_ = 1;  // > 1: each message gets a random priority (see rng_)
  uint64_t rng_ = 0;       // xorshift64 state for the random priorities
  uint64_t sent_ = 0;
  asio::steady_timer rate_timer_;
  bool rate_waiting_ = false;
  uint64_t rate_base_ns_ = 0;
  uint64_t rate_base_sent_ = 0;
  bool flow_paused_ = false;

  // Publisher confirms: send time of each unconfirmed sequence number in a ring indexed by
  // seq & mask (0 = confirmed), the lowest possibly unconfirmed seq, and how many are pending.
  std::vector<uint64_t> pending_;
  uint64_t mask_ = 0;
  uint64_t base_seq_ = 1;
  uint64_t unconfirmed_ = 0;
  uint64_t confirmed_ = 0;
  uint64_t nacked_ = 0;
  bool confirms_changed_ = false;
};

class Consumer final : public Worker {
 public:
  Consumer(ConnParams params, const Options& opts, WorkerStats& stats,
           std::vector<std::string> queues);

 protected:
  bool setup() override;
  void begin() override {
    if (quota_reached_) finish();
  }
  void on_method(uint16_t class_id, uint16_t method_id, Reader& args) override;
  void on_header(uint64_t body_size) override;
  void on_body(std::string_view data) override;
  void on_read_done() override;

 private:
  friend struct ConsumerMethods;
  void message_done();

  std::vector<std::string> queues_;
  uint32_t ack_every_ = 1;
  uint64_t received_ = 0;
  uint64_t reported_ = 0;
  uint64_t delivery_tag_ = 0;
  uint64_t unacked_ = 0;
  uint64_t ack_due_ = 0;  // delivery tag to ack (multiple) after this read, 0 = none
  uint64_t body_left_ = 0;
  bool in_message_ = false;
  bool need_timestamp_ = false;
  bool quota_reached_ = false;
};

}  // namespace warren::perf
