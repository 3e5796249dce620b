#include "broker/publisher_flow.h"

#include <spdlog/spdlog.h>

namespace warren::broker {

PublisherFlow::PublisherFlow(boost::asio::io_context& io, uint64_t connection_id,
                             std::function<void()> resume)
    : connection_id_(connection_id), resume_(std::move(resume)), stall_timer_(io) {}

void PublisherFlow::paused_by(Queue& q) {
  // A connection that also consumes from q must keep reading, or its own acks could never
  // drain q.
  if (q.has_consumer_on(connection_id_)) return;
  for (const auto& b : blocking_)
    if (b.first.get() == &q) return;
  blocking_.emplace_back(QueueRef(&q), q.delivered_total());
  q.block_publisher(weak_from_this());
  if (blocking_.size() == 1) watch_stall();
}

void PublisherFlow::unblocked_by(Queue& q) {
  bool was_paused = paused();
  std::erase_if(blocking_, [&](const auto& b) { return b.first.get() == &q; });
  if (was_paused && !paused()) resume_();
}

void PublisherFlow::stop() {
  blocking_.clear();
  stall_timer_.cancel();
}

void PublisherFlow::watch_stall() {
  stall_timer_.expires_after(kStallInterval);
  stall_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->blocking_.empty()) return;
    bool progress = false;
    for (auto& [q, seen] : self->blocking_) {
      if (q->delivered_total() != seen) progress = true;
      seen = q->delivered_total();
    }
    if (progress) return self->watch_stall();
    spdlog::debug("connection {}: queues it publishes to made no progress; resuming",
                  self->connection_id_);
    // The queues keep this publisher registered (once): they release it when they drain.
    self->blocking_.clear();
    self->resume_();
  });
}

}  // namespace warren::broker
