// Publisher confirms as the broker decides them: a publish is confirmed once every queue holds
// it and, for a persistent message in a durable queue, once the journal synced it; it is nacked
// when a queue refused it or the write failed. Confirms go out in publish order, so a publish
// that does not wait is confirmed together with an earlier one that waits for the disk. The
// protocol numbers publishes (AMQP delivery tags) and writes the acks and nacks.
#pragma once

#include <cstdint>
#include <deque>

#include "broker/publish.h"
#include "store/group_commit.h"

namespace warren::broker {

class ConfirmTracker {
 public:
  // Publish number `tag` (1, 2, ... in order) had this outcome.
  void published(uint64_t tag, const PublishOutcome& outcome);
  // The journal synced (or failed) through c.last_seq. True if a confirm became due.
  bool journal_synced(const store::Completion& c);
  // Whether a confirm still waits for a journal seq above `seq`.
  bool waits_beyond(uint64_t seq) const { return waits_for_seq_ > seq; }
  bool waiting() const { return !pending_.empty(); }

  // Calls ack(through_tag) for a cumulative ack and nack(tag) for each refused publish, in
  // order, for everything decided; last_tag is the newest publish number.
  template <class Ack, class Nack>
  void take_due(uint64_t last_tag, Ack&& ack, Nack&& nack);
  // Publishes confirmed (acked or nacked) so far.
  uint64_t confirmed() const { return confirmed_; }

 private:
  struct Pending {
    enum State : uint8_t { kWaiting, kSynced, kFailed };
    uint64_t tag = 0;
    uint64_t journal_seq = 0;
    State state = kWaiting;
  };
  std::deque<Pending> pending_;  // publishes not confirmed right away, in tag order
  uint64_t waits_for_seq_ = 0;
  uint64_t confirmed_ = 0;
};

template <class Ack, class Nack>
void ConfirmTracker::take_due(uint64_t last_tag, Ack&& ack, Nack&& nack) {
  auto ack_through = [&](uint64_t tag) {
    if (tag <= confirmed_) return;
    ack(tag, tag - confirmed_ > 1);
    confirmed_ = tag;
  };
  while (!pending_.empty() && pending_.front().state != Pending::kWaiting) {
    Pending p = pending_.front();
    pending_.pop_front();
    if (p.state == Pending::kFailed) {
      ack_through(p.tag - 1);
      nack(p.tag);
      confirmed_ = p.tag;
    }
  }
  ack_through(pending_.empty() ? last_tag : pending_.front().tag - 1);
}

}  // namespace warren::broker
