// The broker's side of the message store: persistent messages in durable queues go to one shared
// journal (store::MessageStore), and the journal's sync reports come back to the io thread.
//
// What is written: one MESSAGE record per (durable queue, persistent message), tagged with the
// queue's store id and the queue's own sequence number as msg id, and one ACK record when that
// message leaves the queue for good (acked, dropped, purged, queue deleted). A requeue writes
// nothing: the record keeps its position and its msg id, which is also its place in the queue.
// Two more kinds of MESSAGE record: a transient message paged out of a full queue (under a
// next_page_id() queue id, which recovery does not know and drops), and a compaction copy
// (relocate(), same ids as the original, which it supersedes). Delayed exchanges write records
// of their own (delayed_exchange.h): a prefix saying which exchange and when, then a message.
//
// Record body: u8 exchange length | u8 routing key length | u32 properties length | exchange |
// routing key | raw content-header properties | body. The last four are stored back to back in a
// Message (message.h), so a record is written from two parts with one copy.
//
// Threading: everything here runs on the broker's io thread, except that the store calls the
// completion function on its sync thread; that function only posts to the io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/message.h"
#include "broker/ref.h"
#include "store/delivery_marks.h"
#include "store/message_store.h"

namespace warren::broker {

class Queue;
class DelayStore;

class MessageJournal {
 public:
  // on_dirty: something was appended; the owner must call flush() at the end of this turn.
  // on_synced: a sync round finished (called on the io thread, in seq order).
  MessageJournal(boost::asio::io_context& io, std::function<void()> on_dirty,
                 std::function<void(const store::Completion&)> on_synced);
  ~MessageJournal();
  MessageJournal(const MessageJournal&) = delete;
  MessageJournal& operator=(const MessageJournal&) = delete;

  // Opens (or creates) DIR/msgs and rebuilds durable queues: every live record whose queue id
  // find_queue() knows is restored into that queue in publish order; records of queues that no
  // longer exist are acked so their segments can go. Restored messages are flagged redelivered
  // if the last stop recorded them as delivered, or all of them after a crash (delivery_marks.h).
  // adopt, when set, is offered every live record whose queue id find_queue() does not know
  // (delayed exchanges' messages); it returns whether it took the record.
  std::error_code open(store::MessageStoreOptions options,
                       const std::function<Queue*(uint64_t store_id)>& find_queue,
                       store::RecoveryReport* report,
                       const std::function<bool(const store::RecoveredMessage&)>& adopt = {});
  // Syncs what was appended and stops; later appends fail and removals are ignored, so shutting
  // down (which drops queues and channels) writes no acks: unacked messages come back. With
  // marks (a clean stop), records which messages had been delivered, once everything is synced.
  void close(const std::vector<store::DeliveryMark>* marks = nullptr);
  bool is_open() const { return store_ && store_->is_open(); }

  struct Appended {
    store::Position pos;
    uint64_t seq = 0;  // the journal seq a confirm waits for; 0 when nothing was written
    std::error_code error;
  };
  Appended append(uint64_t queue_id, uint64_t msg_id, const Message& m);
  // A MESSAGE record whose body is `prefix` followed by the usual encoding of m (delayed
  // exchanges keep where and when to deliver there); read_raw() gives the whole body back.
  Appended append_prefixed(uint64_t queue_id, uint64_t msg_id, std::string_view prefix,
                           const Message& m);
  void remove(uint64_t queue_id, uint64_t msg_id, const store::Position& pos);
  // A journal queue id for one queue's paged-out transient messages. Recovery knows only the
  // metadata store's ids (small integers), so these records are dropped at the next start.
  uint64_t next_page_id() { return kPageIdBase + ++pages_issued_; }
  static constexpr uint64_t kPageIdBase = uint64_t{1} << 62;

  // q wrote records: it gets journal_synced() for each sync report until none is pending.
  void watch_syncs(Ref<Queue> q) { sync_watchers_.push_back(std::move(q)); }
  // The same for a delayed exchange's store (delayed_exchange.h).
  void watch_syncs(Ref<DelayStore> d);

  // Compaction (see MessageStore::relocate): sealed segments under half live, a copy of one
  // message, and retiring the old or the new copy once the copy's fate is known.
  std::vector<uint32_t> sparse_segments() const {
    return is_open() ? store_->sparse_segments() : std::vector<uint32_t>{};
  }
  Appended relocate(uint64_t queue_id, uint64_t msg_id, const Message& m);
  // Both may leave a segment with nothing live: the end-of-turn flush deletes it.
  void finish_relocation(const store::Position& old_pos, const store::Position& new_pos) {
    if (!is_open()) return;
    store_->finish_relocation(old_pos, new_pos);
    mark_dirty();
  }
  void abandon_relocation(const store::Position& new_pos) {
    if (!is_open()) return;
    store_->abandon_relocation(new_pos);
    mark_dirty();
  }

  // Reads a paged-out message back; null on error (logged).
  MessageRef read(const store::Position& pos);
  // The record body at pos as written (prefix included); false on error (logged).
  bool read_raw(const store::Position& pos, std::string* body);

  // End of an event-loop turn: hands the turn's records to the sync thread.
  void flush();
  uint64_t unsynced_bytes() const { return store_ ? store_->unsynced_bytes() : 0; }
  // Bytes of message records written since open, copies included (for the disk alarm's checks).
  uint64_t bytes_appended() const { return bytes_appended_; }

  // Record body <-> Message.
  static std::string encode_header(const Message& m);
  static MessageRef decode(std::string_view record_body);
  // Whether the record's message has an expiration property (read from its property flags alone,
  // without decoding it): recovery must decode such a message even when its body stays on disk.
  static bool has_expiration(std::string_view record_body);

 private:
  boost::asio::io_context& io_;
  std::function<void()> on_dirty_;
  std::function<void(const store::Completion&)> on_synced_;
  std::unique_ptr<store::MessageStore> store_;
  // Shared with the sync thread's completion function: false once close() starts, so a
  // completion that is still queued on the io_context after shutdown is dropped.
  std::shared_ptr<bool> alive_;
  // append() and relocate(): one MESSAGE record from the message's two parts.
  Appended write(uint64_t queue_id, uint64_t msg_id, const Message& m, bool relocation,
                 std::string_view prefix = {});
  void synced(const store::Completion& c);
  void mark_dirty();
  // Acks lost to a failed write are written again a second later (the disk may still be full).
  void schedule_ack_retry();

  bool dirty_ = false;
  uint64_t bytes_appended_ = 0;
  boost::asio::steady_timer ack_retry_timer_;
  bool ack_retry_armed_ = false;
  uint64_t pages_issued_ = 0;
  std::vector<Ref<Queue>> sync_watchers_;
  std::vector<Ref<Queue>> sync_scratch_;
  std::vector<Ref<DelayStore>> delay_watchers_;
  std::vector<Ref<DelayStore>> delay_scratch_;
  std::string scratch_;
};

}  // namespace warren::broker
