// Per-queue flow control for one publishing connection: while a queue it published into is over
// its high-water mark, the connection is not read, so consumers keep pace and memory stays
// bounded. Two exceptions keep this from deadlocking: a connection that consumes from the queue
// is never paused by it (its acks are what drain the queue), and a paused publisher is read
// again when none of its queues made progress for kStallInterval (their consumers may be waiting
// for this very connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/queue.h"

namespace warren::broker {

class PublisherFlow : public FlowControlled, public std::enable_shared_from_this<PublisherFlow> {
 public:
  static constexpr std::chrono::milliseconds kStallInterval{100};

  // resume() is called when the publisher may be read again.
  PublisherFlow(boost::asio::io_context& io, uint64_t connection_id, std::function<void()> resume);

  // After a publish routed into q (inline: nothing to do unless q is over its high-water mark).
  void published_to(Queue& q) {
    if (q.over_high_water()) paused_by(q);
  }
  bool paused() const { return !blocking_.empty(); }
  void unblocked_by(Queue& q) override;
  // The connection is closing: forget every queue.
  void stop();

 private:
  void watch_stall();
  void paused_by(Queue& q);

  uint64_t connection_id_;
  std::function<void()> resume_;
  // Full queues published to, each with its delivered_total() when last seen.
  std::vector<std::pair<QueueRef, uint64_t>> blocking_;
  boost::asio::steady_timer stall_timer_;
};

}  // namespace warren::broker
