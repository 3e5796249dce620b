// Group commit: the sync thread that makes handed-over batches durable.
//
// The owner thread submit()s one batch per event-loop turn. The sync thread takes *everything*
// queued so far, writes it with pwritev (contiguous batches become one call), fdatasyncs each file
// it touched, and reports the whole seq range with one Completion. While that sync runs, the next
// turns' batches queue up and become the next round -- batching without a timer, like LavinMQ's
// Persister and Redpanda's flush ops: a lone publish is synced at once, a busy broker gets large
// batches. One sync is in flight at a time.
//
// Errors: if any write or sync of a round fails, the whole round is reported failed (never a false
// success), and every segment it touched is poisoned: nothing more is written to it, since after a
// failed fsync Linux may have dropped the dirty pages and a later "successful" fsync proves
// nothing. The owner sees poisoned_floor() rise and continues in a new segment, so the store stays
// usable once the cause (ENOSPC, a transient EIO) goes away.
#pragma once

#include <atomic>
#include <boost/unordered/unordered_flat_map.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "store/segment_io.h"
#include "store/segment_writer.h"

namespace warren::store {

// Seqs [first_seq, last_seq] are durable (error empty) or failed (error set). Completions arrive
// in seq order with no gaps or overlaps, so "durable up to last_seq" holds for successes.
struct Completion {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::error_code error;
};
// Called on the sync thread, one call at a time.
using CompletionFn = std::function<void(const Completion&)>;

class GroupCommitter {
 public:
  // `dir` holds the segment files (NNNNNNNNNN.seg).
  GroupCommitter(SegmentIo& io, std::string dir, CompletionFn on_complete);
  ~GroupCommitter();  // stop()
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  void start();
  // Syncs everything submitted, reports it, and joins the thread. Idempotent.
  void stop();

  // Owner thread. Takes a non-empty batch; returns an empty one to continue in (recycled, so the
  // steady state allocates nothing).
  std::unique_ptr<Batch> submit(std::unique_ptr<Batch> batch);

  // Owner thread: if the record at `pos` is submitted but not written yet, copies its body out.
  // nullopt when it is not in flight (then it is in the file).
  std::optional<std::error_code> read_in_flight(const Position& pos, std::string* body) const;

  // Segments below this id are poisoned: the owner must append to a segment >= it.
  uint32_t poisoned_floor() const { return poisoned_floor_.load(std::memory_order_relaxed); }
  // Bytes submitted but not yet reported (for publisher backpressure).
  uint64_t unsynced_bytes() const { return unsynced_bytes_.load(std::memory_order_relaxed); }
  std::error_code last_error() const;

  // Counters for tests and stats (approximate while running).
  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }

  static std::string segment_path(const std::string& dir, uint32_t id);

 private:
  void run();
  Completion commit(const std::vector<std::unique_ptr<Batch>>& round);
  std::error_code write_round(const std::vector<std::unique_ptr<Batch>>& round,
                              std::vector<uint32_t>* touched, bool* created);
  int file_for(const Extent& e, bool* created, std::error_code* ec);
  void delete_segments(const std::vector<std::unique_ptr<Batch>>& round);

  SegmentIo& io_;
  const std::string dir_;
  CompletionFn on_complete_;

  // Sync-thread state.
  boost::unordered_flat_map<uint32_t, UniqueFd> files_;  // open for append
  std::vector<iovec> iov_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Batch>> queued_;     // submitted, not yet taken
  std::vector<std::unique_ptr<Batch>> in_flight_;  // being written by the current round
  std::vector<std::unique_ptr<Batch>> free_;       // recycled
  bool sleeping_ = false;
  bool stopping_ = false;
  std::error_code last_error_;

  std::atomic<uint32_t> poisoned_floor_{0};
  std::atomic<uint64_t> unsynced_bytes_{0};
  std::atomic<uint64_t> rounds_{0};
  std::thread thread_;
};

}  // namespace warren::store
