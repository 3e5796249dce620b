// Warren's persistent message store: one append-only journal shared by every durable queue.
//
// Why one shared journal (DESIGN-NOTES §2, recommendation 2): one fdatasync then covers the
// publishes of every queue and tenant, so confirm throughput does not fall with the number of
// queues. Per-queue files would need one sync per dirty file.
//
// Layout: DIR/msgs/NNNNNNNNNN.seg, 64 MiB segments (format in segment_format.h). Segments are not
// preallocated: on the dev VM's ext4 (virtio disk), pwrite+fdatasync of 4 KiB into a growing, a
// fallocate'd and a zero-filled file showed no consistent difference (each 260-4,400 syncs/s,
// varying more between runs than between modes), so preallocation would only add a zero-tail
// case to recovery. Revisit on real NVMe, where a zero-filled (not fallocate'd) file avoids a
// journal commit per fdatasync.
//
// Threads:
//  - ONE owner thread (the broker's io thread) calls everything here: open, append_*, flush,
//    read, close. None of these block on the disk except open/close and read() of a body that is
//    not in memory (one pread from page cache or disk).
//  - A sync thread (group_commit.h) owned by the store writes and fdatasyncs the batches and calls
//    the CompletionFn -- on the sync thread. The broker should post the Completion to its
//    io_context and confirm/nack there.
//
// The promise: a Completion with no error for seqs [a, b] means every record with seq in [a, b]
// (and its segment's directory entry) has been fdatasynced. A failure is reported as a failure for
// exactly the seqs of the failed round, never as success; the store continues in a new segment.
//
// Messages: `(queue_id, msg_id)` must be unique among the store's live messages (a msg_id may be
// reused once the old one is acked: recovery applies an ack only to an earlier message). The one
// exception is relocate(): its copy deliberately repeats the key and supersedes the original. The body
// is opaque -- the caller's parts are concatenated as given, so the caller must make that
// concatenation self-delimiting (e.g. shortstr exchange, shortstr routing key, longstr properties,
// body).
//
// How the broker drives it (all on its io thread unless noted):
//   boot:    MessageStore store(opts, on_complete); store.open(on_recovered, &report) -- rebuild
//            each durable queue from on_recovered (journal order = per-queue publish order), mark
//            those messages redelivered, keep their Position.
//   publish: persistent message routed to durable queue q: a = store.append_message(q, msg_id,
//            {exchange, routing key, properties, body} encoded self-delimiting); the queue keeps
//            a.pos (12 B); the channel remembers (a.seq -> delivery tag) for the confirm. Fanout to
//            N durable queues = N records; confirm the publish when its highest seq completes.
//   turn end: store.flush() once per event-loop turn (after all reads of the turn are parsed).
//   on_complete (sync thread): post the Completion to the io_context; there, confirm every
//            publish whose seqs are all <= last_seq with one basic.ack multiple=true per channel,
//            or, for an error, basic.nack them, drop those messages from their queues and
//            append_ack() each, so a record that did reach the disk cannot come back.
//   ack/drop: consumer ack, reject without requeue, TTL expiry, purge, queue delete, max-length
//            drop: store.append_ack(q, msg_id, pos). Never wait for its completion.
//   page-out: drop the body from RAM, keep pos; store.read(pos, &buf) when delivering it.
//   backpressure: stop reading publishers while store.unsynced_bytes() is above a watermark.
//   shutdown: store.close() (syncs and reports everything; then no more callbacks).
//
// Compaction (relocate() below): the broker copies the ready messages of sparse segments forward;
// a newer MESSAGE record for a live (queue, msg id) supersedes the older one at recovery.
//
// Not done yet:
//  - Compaction of messages held unacked by consumers (they keep their segment until acked).
//  - Sealed-segment summaries: recovery reads every surviving byte (it must deliver every live
//    body anyway); a footer with counts would let it skip fully-acked regions.
//  - Skipping the write of a message acked before its batch is written (RabbitMQ "flying").
//  - Shared bodies: fanout to N durable queues writes the body N times (RabbitMQ's msg_store
//    shares bodies >= 4 KiB); a record with a list of (queue, msg id) would fix that.
//  - read() is owner-thread only and may block on a cold pread; a reader thread would need its
//    own fds and a thread-safe view of the segment set.
//  - Retention of poisoned segments: under a persistent I/O error every failed round leaves a
//    (small) segment behind until the broker's acks for its messages let GC delete it.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <deque>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "store/group_commit.h"
#include "store/segment_format.h"
#include "store/segment_io.h"
#include "store/segment_set.h"
#include "store/segment_writer.h"

namespace warren::store {

struct MessageStoreOptions {
  std::string dir;                             // the journal lives in dir/msgs
  uint32_t segment_size = uint32_t{64} << 20;  // clamped to [4 KiB, 1 GiB]
  SegmentIo* io = nullptr;                     // nullptr = SegmentIo::posix(); tests inject faults
  size_t scan_chunk = size_t{4} << 20;         // read size during recovery
  // Memory: once synced, the ack records of a purge of many messages (32 bytes each) are handed
  // to this whole, to be freed in steps (step(budget) frees about budget bytes and returns how
  // many, 0 when done); freeing hundreds of MB at once would stall the owner thread. Null: they
  // are freed at once.
  std::function<void(std::function<uint64_t(uint64_t budget)> step)> dispose;
};

// One live message found by recovery. `body` is valid only during the callback; keep `pos` to
// read it again later instead of copying it.
struct RecoveredMessage {
  uint64_t queue_id = 0;
  uint64_t msg_id = 0;
  uint64_t seq = 0;
  Position pos;
  std::string_view body;
};
using RecoverFn = std::function<void(const RecoveredMessage&)>;

// A segment recovery had to cut. Everything before valid_end was kept.
struct SegmentDamage {
  uint32_t segment = 0;
  uint64_t file_size = 0;
  uint64_t valid_end = 0;
  uint64_t bytes_dropped = 0;
  bool bad_header = false;  // whole file set aside as NNNNNNNNNN.seg.corrupt (or removed if empty)
  DecodeStatus reason = DecodeStatus::kOk;
};

struct RecoveryReport {
  uint32_t segments = 0;  // segment files scanned
  uint64_t records = 0;   // valid records read
  uint64_t messages = 0;  // live messages delivered to the RecoverFn
  uint64_t acks_applied = 0;
  uint64_t orphan_acks = 0;  // acks whose message was in an already deleted segment
  uint64_t relocations = 0;  // compaction copies that superseded an older record
  uint64_t bytes_scanned = 0;
  uint64_t bytes_dropped = 0;     // sum over `damaged`
  uint32_t segments_deleted = 0;  // fully acked segments removed right after recovery
  uint64_t next_seq = 0;
  double seconds = 0;
  std::vector<SegmentDamage> damaged;
  std::string summary() const;
};

class MessageStore {
 public:
  // on_complete is called on the sync thread; see Completion.
  MessageStore(MessageStoreOptions options, CompletionFn on_complete);
  ~MessageStore();  // close()
  MessageStore(const MessageStore&) = delete;
  MessageStore& operator=(const MessageStore&) = delete;

  // Recovers the journal (creating it if absent): scans every segment in order verifying CRCs,
  // cuts a torn or corrupt tail at the last valid record, replays acks, calls on_message for
  // every live message in journal order (so per-queue order is the publish order), deletes fully
  // acked segments and starts a new active segment. Time and I/O are linear in the journal size
  // (0.13-0.35 s for 1M 16 B messages on the dev VM); transient memory is 12 B per message record
  // plus ~32 B per message not yet acked at that point of the scan, all freed before returning.
  // Errors: I/O errors on the directory or a segment; a damaged tail is *not* an error (see
  // report->damaged).
  std::error_code open(const RecoverFn& on_message, RecoveryReport* report = nullptr);

  // Flushes, waits until every submitted batch is synced and reported (no Completion arrives
  // after close() returns), stops the sync thread. The object cannot be reopened.
  void close();
  bool is_open() const { return open_; }

  struct Appended {
    Position pos;  // for read() and append_ack()
    uint64_t seq =
        0;  // to match against Completions (seqs start at 1, +1 per record, acks included)
    std::error_code error;  // kNotOpen or kTooLarge; then nothing was appended
    explicit operator bool() const { return !error; }
  };
  // Appends a MESSAGE record whose body is the concatenation of `parts` (copied once, straight
  // into the batch buffer). Never blocks; durable after the Completion covering `seq`.
  Appended append_message(uint64_t queue_id, uint64_t msg_id,
                          std::span<const std::string_view> parts);
  Appended append_message(uint64_t queue_id, uint64_t msg_id,
                          std::initializer_list<std::string_view> parts) {
    return append_message(queue_id, msg_id, std::span(parts.begin(), parts.size()));
  }
  // Records that the message at `pos` (from append_message or recovery) is gone: consumed and
  // acked, dropped, expired, purged, or its publish failed. Never waits for a sync of its own: a
  // lost ack only means a redelivery after a crash.
  std::error_code append_ack(uint64_t queue_id, uint64_t msg_id, const Position& pos);

  // Compaction. A sealed segment whose live records use less than half of it is "sparse": its
  // live messages should be copied forward so the segment can go. relocate() appends a copy
  // with the same (queue, msg id): a later MESSAGE record for a live key supersedes the earlier
  // one at recovery. Once its Completion reports the copy durable, the caller switches to the
  // new position and calls finish_relocation(), which retires the old copy (the new segment then
  // depends on the old one, as an ack's does). If the copy failed, or the message left its queue
  // meanwhile (it is acked through its old position), call abandon_relocation() instead.
  std::vector<uint32_t> sparse_segments() const;
  Appended relocate(uint64_t queue_id, uint64_t msg_id, std::span<const std::string_view> parts);
  void finish_relocation(const Position& old_pos, const Position& new_pos);
  void abandon_relocation(const Position& new_pos);

  // Owner thread: give every Completion to the store as well (after hopping to the owner thread).
  // The acks of a failed round are kept and written again by retry_failed_acks(): the message
  // counts already treat them as done, so without a rewrite a message acked (or purged) on a full
  // disk could come back after a restart.
  void on_completion(const Completion& c);
  // Appends the failed acks again; call once the disk may have room (e.g. from a timer). Acks of
  // messages whose segment is gone are dropped. Returns how many were appended.
  size_t retry_failed_acks();
  size_t failed_acks() const { return failed_acks_.size(); }

  // Hands everything appended since the last flush to the sync thread. Call once at the end of
  // each event-loop turn (cheap when there is nothing to do: one uncontended lock, plus a futex
  // wake only if the sync thread is idle). Records appended between two flushes always land in
  // the same Completion, so a fanout publish is never half confirmed. Also issues deletion of
  // segments that became garbage.
  void flush();

  // The body of the message at `pos`, from memory if it is not written yet, else one pread.
  std::error_code read(const Position& pos, std::string* body);

  // Stats and state.
  uint64_t unsynced_bytes() const;  // appended and flushed, not yet reported
  uint64_t next_seq() const;
  uint32_t active_segment() const;
  std::vector<uint32_t> segments() const { return segments_.ids(); }
  uint64_t live_messages(uint32_t segment) const { return segments_.live(segment); }
  uint64_t segments_deleted() const { return segments_deleted_; }
  std::error_code last_error() const;  // the most recent failed round's error
  const std::string& journal_dir() const { return msgs_dir_; }

 private:
  void maybe_roll(size_t record_size);
  int read_fd(uint32_t segment, std::error_code* ec);
  std::error_code recover(const RecoverFn& on_message, RecoveryReport* rep, uint32_t* max_id,
                          uint64_t* next_seq);
  // on_completion(): hands the acks synced up to last_seq to opts_.dispose if there are many.
  void dispose_synced_acks(uint64_t last_seq);

  MessageStoreOptions opts_;
  SegmentIo& io_;
  CompletionFn on_complete_;
  std::string msgs_dir_;
  bool opened_ = false;  // open() was called
  bool open_ = false;    // open() succeeded and close() was not called

  SegmentSet segments_;
  std::optional<SegmentWriter> writer_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<Batch> spare_;
  boost::unordered_flat_map<uint32_t, UniqueFd> read_fds_;
  std::vector<uint32_t> garbage_;
  struct AckRecord {
    uint64_t seq;
    uint64_t queue_id;
    uint64_t msg_id;
    uint32_t msg_segment;
  };
  std::deque<AckRecord> acks_in_flight_;  // appended, not yet reported, in seq order
  std::vector<AckRecord> failed_acks_;
  uint64_t segments_deleted_ = 0;
};

}  // namespace warren::store
