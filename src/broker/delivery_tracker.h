// Deliveries awaiting acknowledgement on one channel (an AMQP channel today, any protocol's
// session tomorrow): delivery tags, prefetch accounting per consumer and per channel, and the
// outcome of an ack, a requeue or a reject (dropped or dead-lettered by its queue). The
// protocol only writes frames and buffers settlements of a transaction until commit.
#pragma once

#include <cstdint>
#include <boost/circular_buffer.hpp>
#include <vector>

#include "broker/error.h"
#include "broker/queue.h"

namespace warren::broker {

enum class Settlement : uint8_t {
  kAck,      // done with it
  kRequeue,  // back to its queue, at its original position, flagged redelivered
  kReject,   // rejected without requeue: dead-lettered if its queue has a DLX, else dropped
};

class DeliveryTracker {
 public:
  ~DeliveryTracker() { requeue_all(); }

  // basic.qos prefetch_count. As RabbitMQ 3.x: global=false sets the limit of consumers created
  // afterwards and lifts a channel-wide limit set earlier; global=true limits the unacked
  // deliveries of all the channel's consumers together (basic.get is never limited).
  void set_prefetch(uint32_t count, bool global);
  uint32_t consumer_prefetch() const { return consumer_prefetch_; }
  bool has_channel_prefetch() const { return channel_prefetch_ != 0; }
  // Whether consumer c may get one more delivery now (credit; the socket is the protocol's).
  bool can_deliver(const Consumer& c) const;

  // Records a delivery and returns its tag (1, 2, ... per channel). c is null for basic.get; q is
  // null for a direct reply. With no_ack the message is done at once.
  uint64_t delivered(Consumer* c, Queue* q, QueuedMessage&& m, bool no_ack);

  // Settles the outstanding delivery `tag`, or with `multiple` every one up to it (tag 0: all).
  // 406 "unknown delivery tag" for a tag that is not outstanding.
  Status settle(uint64_t tag, bool multiple, Settlement how);

  // Transactions: marks the deliveries settle() would settle as taken (a second ack of the same
  // tag is an error), appending them to *out; apply() settles one at tx.commit, restore() puts
  // it back at tx.rollback.
  struct Deferred {
    uint64_t tag;
    Settlement how;
  };
  Status defer(uint64_t tag, bool multiple, Settlement how, std::vector<Deferred>* out);
  void apply(const Deferred& d);
  void restore(const Deferred& d);

  // basic.recover, channel close: every outstanding delivery back to its queue.
  void requeue_all();
  // A consumer of this channel went away; its deliveries stay outstanding (they can still be
  // acked, and count against a channel-wide prefetch until they are, as in RabbitMQ).
  void consumer_gone(const Consumer* c);

  size_t outstanding() const { return outstanding_; }
  // The channel's message counters (management rates): deliveries, gets and acks are counted
  // here, publishes and confirms by the protocol (Broker::count_publish, count_confirms).
  ObjectStats& stats() { return stats_; }
  const ObjectStats& stats() const { return stats_; }
  // Entries kept, settled ones included (bounded: see compact()).
  size_t tracked_entries() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t tag = 0;
    QueuedMessage message;
    QueueRef queue;
    Consumer* consumer = nullptr;  // null for basic.get or after the consumer went away
    bool done = false;
    bool deferred = false;  // settled inside an uncommitted transaction
    bool counted = false;   // counts against the channel-wide prefetch (a consumer delivery)
  };
  using Entries = boost::circular_buffer<Entry>;
  using Iter = Entries::iterator;
  Iter find(uint64_t tag);
  // [begin, end) of the deliveries `tag`/`multiple` names, or the 406 error.
  OpResult<std::pair<Iter, Iter>> range(uint64_t tag, bool multiple);
  void settle_entry(Entry& e, Settlement how, std::vector<std::pair<QueueRef, std::vector<QueuedMessage>>>& requeued);
  void release_credit(Entry& e);
  // Drops settled entries: from the front at once, and from the middle once they are the
  // majority, so one long-unacked delivery does not keep every later acked one alive.
  void compact();

  // In tag order. A ring that doubles when full: no allocation per few deliveries as with a
  // std::deque, and one block, freed at once when a large backlog of unacked deliveries is gone.
  Entries entries_;
  static constexpr size_t kMinCapacity = 64;
  static constexpr size_t kKeptCapacity = 16384;  // about 1 MiB of entries
  ObjectStats stats_;
  size_t outstanding_ = 0;     // entries not done
  uint64_t next_tag_ = 1;
  uint32_t consumer_prefetch_ = 0;
  uint32_t channel_prefetch_ = 0;
  uint32_t consumer_unacked_ = 0;  // outstanding consumer deliveries (global qos counts them)
};

}  // namespace warren::broker
