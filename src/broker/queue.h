// A queue: ready messages in publish order, its consumers in round-robin order, and dispatch.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "common/field_table.h"
#include "broker/client_identity.h"
#include "broker/message_stats.h"
#include "broker/message.h"
#include "broker/queue_settings.h"
#include "broker/queue_totals.h"
#include "broker/ready_messages.h"
#include "broker/ref.h"
#include "store/delivery_marks.h"
#include "store/group_commit.h"
#include "store/segment_format.h"

namespace warren::broker {

class Queue;
class VHost;
class MessageJournal;
class MemoryTrimmer;
struct Consumer;

// Where a consumer's deliveries go (an AMQP channel). Kept abstract so the broker does not depend on
// the protocol layer.
class DeliverySink {
 public:
  virtual ~DeliverySink() = default;
  // Whether the channel/connection can take one more delivery for this consumer now.
  virtual bool can_deliver(const Consumer& c) const = 0;
  // q is null for direct reply-to deliveries, which belong to no queue.
  virtual void deliver(Consumer& c, Queue* q, QueuedMessage&& m) = 0;
  // The broker removed the consumer (its queue was deleted); the sink notifies the client and
  // frees the consumer.
  virtual void cancelled_by_broker(Consumer& c) = 0;
  // Who receives, named in the firehose's trace of each delivery (asked only while tracing).
  virtual const ClientIdentity* identity() const { return nullptr; }
};

struct Consumer {
  std::string tag;
  DeliverySink* sink = nullptr;
  Ref<Queue> queue;  // null for a direct reply-to consumer
  uint64_t connection_id = 0;
  bool no_ack = false;
  bool exclusive = false;
  uint32_t prefetch = 0;  // 0 = unlimited
  uint32_t unacked = 0;
  int64_t priority = 0;  // x-priority (any integer): higher-priority consumers are served first
  FieldTable arguments;
};

// A publisher that can be paused while a queue it feeds is over its high-water mark.
class FlowControlled {
 public:
  virtual ~FlowControlled() = default;
  virtual void unblocked_by(Queue& q) = 0;
};

// Receives "this queue has work" notifications so dispatch can run once per event-loop turn.
class DispatchScheduler {
 public:
  virtual ~DispatchScheduler() = default;
  virtual void schedule_dispatch(Queue& q) = 0;
  // Calls q.wake_up() at (or soon after) at_ms on the steady clock (message TTL, x-expires).
  // One timer serves every queue. Without a scheduler that has timers, nothing expires.
  virtual void schedule_wakeup(Queue& q, uint64_t at_ms) {}
  // Gives freed heap back to the OS (memory_trimmer.h); null: nothing does.
  virtual MemoryTrimmer* memory_trimmer() { return nullptr; }
};

// Why a message left its queue for a dead-letter exchange (x-death "reason").
enum class DeadLetterReason : uint8_t { kRejected, kExpired, kMaxLen };

// Milliseconds on the steady clock: message expiry and queue expiry.
uint64_t steady_now_ms();

class Queue {
 public:
  struct Options {
    bool durable = false;
    bool exclusive = false;
    bool auto_delete = false;
    uint64_t owner_connection = 0;  // for exclusive queues
    FieldTable arguments;
    uint64_t store_id = 0;  // durable queues: the metadata store's id, which tags stored messages
  };

  Queue(std::string vhost, std::string name, Options options, DispatchScheduler* scheduler);
  static Ref<Queue> create(std::string vhost, std::string name, Options options,
                           DispatchScheduler* scheduler);
  static void destroy(Queue* q);

  const std::string& name() const { return name_; }
  const std::string& vhost() const { return vhost_; }
  const Options& options() const { return options_; }
  // Replaces the declared arguments (VHost::set_queue_argument, which also re-resolves the
  // effective settings and stores the change).
  void set_arguments(FieldTable args) { options_.arguments = std::move(args); }
  bool durable() const { return options_.durable; }
  bool exclusive() const { return options_.exclusive; }
  bool auto_delete() const { return options_.auto_delete; }
  uint64_t owner_connection() const { return options_.owner_connection; }
  bool deleted() const { return deleted_; }
  void mark_deleted();
  const QueueSettings& settings() const { return settings_; }
  // A policy changed the queue's effective settings (QueueSettings::resolve): they apply at once,
  // as RabbitMQ's policy_changed. A lower length limit drops (dead-letters, reason maxlen) from
  // the head now under drop-head; a new x-expires restarts the countdown; a new message TTL
  // applies to messages published from now on (RabbitMQ stamps a message's expiry when it is
  // queued). max-priority and single-active-consumer stay as declared.
  void apply_settings(const QueueSettings& s);
  // The vhost that owns the queue (dead-lettering publishes through it; x-expires deletes the
  // queue from it). Null in unit tests of the queue alone.
  void set_owner(VHost* owner) { owner_ = owner; }
  // Counts the queue's ready and unacked messages and consumers into its vhost's running
  // totals from now until it is deleted (null: stop counting).
  void count_into(QueueTotals* totals);

  size_t message_count() const { return ready_.size(); }
  uint64_t message_bytes() const { return ready_bytes_; }
  size_t consumer_count() const { return consumers_.size(); }
  const std::vector<Consumer*>& consumers() const { return consumers_; }
  bool has_exclusive_consumer() const;

  // Flow control: while a queue with consumers holds more than the high-water mark of ready
  // messages, publishers into it are paused until it drains below the low-water mark, so
  // consumers keep pace and memory stays bounded. Without consumers a backlog may grow (the
  // broker-wide memory alarm bounds it).
  static constexpr size_t kFlowHighWater = 20'000;
  static constexpr size_t kFlowLowWater = 10'000;
  static constexpr size_t kFlowHighBytes = 64u << 20;
  bool over_high_water() const {
    return !consumers_.empty() && (ready_.size() >= kFlowHighWater || ready_bytes_ >= kFlowHighBytes);
  }
  // Registers a paused publisher once, however often it is paused by this queue.
  void block_publisher(std::weak_ptr<FlowControlled> p);
  bool has_consumer_on(uint64_t connection_id) const;
  // Messages handed out so far (deliveries and gets): lets a paused publisher see progress.
  uint64_t delivered_total() const { return delivered_total_; }
  // Deliveries and gets of this queue not yet settled, on every channel (messages_unacknowledged).
  size_t unacked_count() const { return unacked_; }
  void delivery_outstanding() {
    ++unacked_;
    if (totals_ != nullptr) ++totals_->unacked;
  }
  void delivery_settled() {
    --unacked_;
    if (totals_ != nullptr) --totals_->unacked;
  }
  // Message counters and samples (management rates); the vhost's are counted alongside.
  ObjectStats& stats() { return stats_; }
  const ObjectStats& stats() const { return stats_; }
  VHost* owner() const { return owner_; }

  // Persistence: a durable queue with a journal writes its persistent messages there; any queue
  // with a journal pages transient messages out to it past the RAM budget.
  void set_journal(MessageJournal* journal) { journal_ = journal; }
  bool persists_messages() const { return journal_ != nullptr && options_.store_id != 0; }

  struct Enqueued {
    uint64_t journal_seq = 0;  // > 0: durable once the journal has synced this seq
    bool journal_failed = false;  // a persistent message could not be written (confirm: nack)
    bool rejected = false;  // over the length limit with x-overflow reject-publish(-dlx)
  };
  // Applies the queue's TTL, length limit (dropping or dead-lettering the head, or refusing the
  // message) and priority.
  Enqueued enqueue(MessageRef m);
  // Recovery: appends a message found in the journal (in publish order), flagged redelivered.
  // record_body is the journal record's body, decoded only if the message stays in RAM. False if
  // the record is not a message (the caller then drops it from the journal).
  bool restore(uint64_t msg_id, const store::Position& pos, std::string_view record_body,
               bool redelivered);
  // Clean stop: the journaled messages flagged redelivered (which includes every unacked
  // delivery, requeued when its channel closed).
  void collect_delivery_marks(std::vector<store::DeliveryMark>* out) const;

  // Memory budget: a queue keeps at most this many ready messages (or body bytes) in RAM. Past
  // it, messages are paged out: the queue keeps 32 bytes each (position, seq, flags) and reads
  // the body back when the message reaches a consumer, so a backlog larger than memory lives on
  // disk (as RabbitMQ's CQv2 and LavinMQ's segments). Persistent messages of durable queues are
  // in the journal anyway; a transient message is written there only when it is paged out.
  // The byte budget lets a queue with consumers reach the flow-control mark (kFlowHighWater)
  // with 1 KiB messages before it pages: at 16 MiB it paged first, and a 1 KiB stream wrote and
  // re-read its backlog (bench/ab_warren.sh --size 1024: 27% less server CPU per message at 32).
  static constexpr size_t kRamMessages = 20'000;
  static constexpr uint64_t kRamBytes = uint64_t{32} << 20;
  size_t messages_in_ram() const { return ram_messages_; }
  // The journal synced (or failed to write) [c.first_seq, c.last_seq]: bodies waiting for that
  // leave RAM, and persistent messages whose write failed are dropped (their publish is nacked).
  void journal_synced(const store::Completion& c);
  bool has_unsynced_records() const { return !unsynced_.empty(); }
  // Compaction: copies the ready messages whose records are in `segments` (sorted) forward in
  // the journal, up to about max_bytes; each switches to its copy once that is synced. Returns
  // the bytes written.
  uint64_t relocate_from(const std::vector<uint32_t>& segments, uint64_t max_bytes);
  // A message left this queue for good (acked, dropped): forget it in the journal too.
  void discard(const QueuedMessage& m) {
    if (m.journaled()) forget_in_journal(m);  // inline: most messages were never journaled
  }
  // Puts messages back at their original positions (by seq), flagged redelivered.
  void requeue(std::vector<QueuedMessage> messages);
  // A delivery rejected without requeue: dead-lettered (reason "rejected") if the queue has a
  // dead-letter exchange, dropped otherwise.
  void reject(QueuedMessage&& m);
  // A consumer, basic.get or redeclare used the queue: restarts the x-expires countdown.
  void touch();
  // The wakeup asked for through DispatchScheduler::schedule_wakeup: expires messages at the
  // head and deletes the queue when unused for x-expires.
  void wake_up();
  // The wakeup this queue waits for (0: none). A broker wakeup for another time is redundant:
  // this one (or a wake_up() that already ran) reschedules from the state it finds.
  uint64_t pending_wakeup() const { return wakeup_at_; }
  // Takes the head message for basic.get; empty msg when the queue is empty. receiver: who
  // gets it, for the firehose.
  QueuedMessage pop(const ClientIdentity* receiver = nullptr);
  size_t purge();

  void add_consumer(Consumer* c);
  // Returns true if this was the last consumer of an auto-delete queue (caller deletes it).
  bool remove_consumer(Consumer* c);
  bool ever_had_consumer() const { return ever_had_consumer_; }

  // Delivers ready messages round-robin to consumers that can take them. Returns how many.
  size_t dispatch();
  void request_dispatch();

  // The consumer that receives under x-single-active-consumer (null when no consumer).
  Consumer* single_active_consumer() const;

  // Scratch mark used by routing to add a queue once per publish without a set.
  uint64_t route_mark = 0;
  bool dispatch_scheduled = false;

 private:
  template <class>
  friend class Ref;
  Consumer* next_consumer();
  // Removes expired messages from the heads of the ready levels (dead-lettering them). Returns
  // whether any expired.
  bool expire_heads(uint64_t now);
  // Schedules the next wakeup: the earliest head expiry or the queue's own expiry.
  void schedule_wakeup();
  // A message left the head: the new head may expire before the wakeup already scheduled.
  void head_may_expire();
  uint64_t expiry_of(const Message& m, uint64_t now) const;
  // Enforces x-max-length / x-max-length-bytes by dropping (dead-lettering) from the head.
  void drop_over_limit();
  bool over_limit(size_t extra_messages, uint64_t extra_bytes) const;
  void dead_letter(QueuedMessage&& m, DeadLetterReason reason);
  void release_publishers_if_drained();
  // Ready-message accounting: ready_bytes_ counts a body in RAM by its size and a paged-out
  // message by its journal record's size; ram_* count only what is in RAM.
  void account_added(const QueuedMessage& m);
  void account_removed(const QueuedMessage& m);
  bool ram_full() const { return ram_messages_ >= kRamMessages || ram_bytes_ >= kRamBytes; }
  // Whether the vhost is traced (firehose.h); then trace_delivery copies each delivery.
  bool traced() const;
  void trace_delivery(const QueuedMessage& m, const ClientIdentity* receiver) const;
  // Removes the head message, reading its body back from the journal if it was paged out. A
  // message that cannot be read back is dropped (the journal logs why). False when empty.
  bool take_front(QueuedMessage* out);

  uint32_t refs_ = 0;
  std::string vhost_;
  std::string name_;
  Options options_;
  DispatchScheduler* scheduler_;
  MessageJournal* journal_ = nullptr;
  uint64_t page_id_ = 0;  // journal queue id for paged-out transient messages, set on first use
  // Journal records of ready messages not yet reported synced, in journal order.
  struct UnsyncedRecord {
    uint64_t journal_seq;
    uint64_t msg_seq;
    uint8_t priority = 0;
    bool page_out = false;  // drop the body from RAM once synced
    bool relocation = false;  // a compaction copy: switch to new_pos once synced
    store::Position old_pos, new_pos;
  };
  void settle_relocation(const UnsyncedRecord& r, bool synced);
  void forget_in_journal(const QueuedMessage& m);
  uint64_t journal_id(const QueuedMessage& m) const {
    return m.paged_transient ? page_id_ : options_.store_id;
  }
  std::deque<UnsyncedRecord> unsynced_;
  QueueSettings settings_;
  VHost* owner_ = nullptr;
  ReadyMessages ready_;
  uint64_t last_used_ms_ = 0;
  uint64_t wakeup_at_ = 0;  // the wakeup already scheduled (0: none)
  // Set once a message with an expiry was queued: until then the message path reads no clock and
  // looks at no head for expiry.
  bool may_expire_ = false;
  uint64_t ready_bytes_ = 0;
  size_t ram_messages_ = 0;
  uint64_t ram_bytes_ = 0;
  uint64_t delivered_total_ = 0;
  size_t unacked_ = 0;
  QueueTotals* totals_ = nullptr;  // the vhost's running totals while the queue lives in it
  ObjectStats stats_;
  std::vector<std::weak_ptr<FlowControlled>> blocked_publishers_;
  std::vector<Consumer*> consumers_;
  size_t rr_next_ = 0;
  uint64_t next_seq_ = 1;
  bool deleted_ = false;
  bool ever_had_consumer_ = false;
};

using QueueRef = Ref<Queue>;

}  // namespace warren::broker
