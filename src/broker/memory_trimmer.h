// Gives heap memory that the broker freed back to the operating system.
//
// Why this is needed: glibc's malloc hands memory back to the kernel on its own only from the
// top of the heap (and only past M_TRIM_THRESHOLD). The free chunks below the last live one stay
// resident. A queue that held millions of messages frees hundreds of MB of small blocks (its
// std::deque nodes, 48 bytes per message, and the journal's in-flight ack records, 32 bytes per
// message), scattered under a few long-lived allocations: measured with 6M 16-byte messages and a
// queue.delete, 505 MB of the 520 MB heap were free and RSS stayed at 510 MB until restart.
// Lowering the trim and mmap thresholds (GLIBC_TUNABLES) changed nothing, and there is one arena
// on the io thread (the sync thread's holds 130 KB), so M_ARENA_MAX is not the cause either.
// malloc_trim(0) gives every free page back (madvise(MADV_DONTNEED) on the free chunks).
//
// When: whoever frees a lot (a queue purged, deleted, or drained after holding many messages; the
// journal's ack records of that once synced) calls released() with a rough byte count. Nothing
// happens on the message path. Once the reports add up to Options::min_released, a trim runs on
// the io thread after Options::delay (so a burst of deletes gives one trim), at most once per
// Options::min_interval.
//
// Cost: malloc_trim takes about 0.1 ms per MB it gives back (the kernel frees the pages; walking
// the free lists is negligible), and holds the arena lock meanwhile, so running it on another
// thread does not spare the io thread, which needs that lock for its next malloc. To keep each
// stall short the trimmer trims in steps: big containers are handed over with dispose() instead
// of being destroyed on the spot, and each step destroys at most Options::step_bytes of them and
// trims right after, one step per event-loop turn, so the io thread serves other work between
// steps. A trim with nothing to give back costs ~0.1 ms.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace warren::broker {

class MemoryTrimmer {
 public:
  struct Options {
    // Reports below this in total do not trigger a trim (freed memory that small is reused soon).
    uint64_t min_released = uint64_t{16} << 20;
    // From the first report to the trim: reports in between join it.
    std::chrono::milliseconds delay{100};
    // Between two trims (steps of one disposal excepted).
    std::chrono::milliseconds min_interval{1000};
    // Bytes of disposed containers destroyed per step (one step per event-loop turn).
    uint64_t step_bytes = uint64_t{32} << 20;
  };
  // Gives free heap back; returns whether it did anything. malloc_trim(0) by default; unit tests
  // count calls instead.
  using TrimFn = std::function<bool()>;
  // Destroys up to `budget` bytes of a disposed container; returns the bytes it destroyed, 0 once
  // nothing is left.
  using DisposeStep = std::function<uint64_t(uint64_t budget)>;

  explicit MemoryTrimmer(boost::asio::io_context& io);
  MemoryTrimmer(boost::asio::io_context& io, Options options, TrimFn trim = {});
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // About `bytes` of heap memory went back to the allocator.
  void released(uint64_t bytes);
  // Takes over a container to destroy in steps (see Cost above); `bytes` is its rough size.
  // Containers whose elements hold references elsewhere must have been emptied of them first
  // (the trimmer may run the steps after their owner is gone).
  void dispose(uint64_t bytes, DisposeStep step);
  // Convenience: takes ownership of any container with pop_front(), empty() and size().
  template <class Deque>
  void dispose(Deque&& d, size_t element_bytes);

  // Memory released often includes records the journal still holds (a purge's acks: 65 bytes per
  // message until synced). With a journal (last_seq: the seq of its last record), the released
  // bytes are reported again once journal_synced() has seen that seq, for one more trim.
  void watch_journal(std::function<uint64_t()> last_seq) { journal_last_seq_ = std::move(last_seq); }
  void journal_synced(uint64_t last_seq);

  struct Stats {
    uint64_t trims = 0;         // malloc_trim calls
    uint64_t trimmed_bytes = 0;  // RSS given back by them (as /proc/self/statm saw it)
    double last_trim_ms = 0;    // wall time of the last trim (including its dispose step)
    double max_trim_ms = 0;
  };
  const Stats& stats() const { return stats_; }
  uint64_t pending() const { return pending_; }

  // Resident set size of this process in bytes (/proc/self/statm), 0 if unknown.
  static uint64_t rss_bytes();

 private:
  void schedule(std::chrono::steady_clock::time_point at);
  void run();

  boost::asio::io_context& io_;
  Options options_;
  TrimFn trim_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point timer_at_{};  // when the armed timer fires (0: idle)
  std::chrono::steady_clock::time_point last_trim_{};
  uint64_t pending_ = 0;
  std::function<uint64_t()> journal_last_seq_;
  uint64_t awaited_seq_ = 0;    // journal_synced() up to this reports awaited_bytes_ again
  uint64_t awaited_bytes_ = 0;
  // Disposed containers, oldest first, and the bytes of each not destroyed yet.
  struct Disposal {
    uint64_t bytes;
    DisposeStep step;
  };
  std::deque<Disposal> disposals_;
  Stats stats_;
  std::shared_ptr<bool> alive_;
};

template <class Deque>
void MemoryTrimmer::dispose(Deque&& d, size_t element_bytes) {
  if (d.empty()) return;
  auto owned = std::make_shared<std::decay_t<Deque>>(std::move(d));
  uint64_t bytes = owned->size() * element_bytes;
  dispose(bytes, [owned, element_bytes](uint64_t budget) -> uint64_t {
    uint64_t done = 0;
    while (!owned->empty() && done < budget) {
      owned->pop_front();
      done += element_bytes;
    }
    if (owned->empty()) {
      std::decay_t<Deque>().swap(*owned);  // its map too
      return done == 0 ? 0 : done;
    }
    return done;
  });
}

}  // namespace warren::broker
