// Gives the heap memory the broker freed back to the operating system, in steps short enough not
// to stall the event loop.
//
// Why it is needed: glibc's malloc returns memory to the kernel by itself only from the top of the
// heap. Free chunks below the last live allocation stay resident. A queue that held millions of
// messages frees hundreds of MB of small blocks (its std::deque nodes, 48 bytes per message, and
// the journal's in-flight ack records of a purge, 32 bytes per message) under a few long-lived
// allocations. Measured with 6M 16-byte messages and a queue.delete: 505 MB of the 520 MB heap
// were free, and RSS stayed at ~510 MB until restart. Lower trim and mmap thresholds
// (GLIBC_TUNABLES) changed nothing, and the io thread has the only busy arena (the journal's sync
// thread's holds 130 KB), so M_ARENA_MAX is not the cause either. malloc_trim(0) gives the free
// pages back (madvise(MADV_DONTNEED) on every free chunk): RSS went from 510 to 23 MB.
//
// What it costs: malloc_trim takes time in proportion to the resident free memory it gives back,
// as the kernel frees the pages: 0.1 ms per MB on an idle machine, up to 0.7 ms per MB on a busy
// one (one trim after that queue.delete: 54 to 196 ms). A trim with nothing new to give back costs
// ~0.1 ms. It holds the arena lock throughout, so running it on another thread would not spare the
// io thread, which needs that lock for its next malloc (measured: the other thread's mallocs
// waited as long as the trim). Hence steps:
//  - Containers too big to free at once are handed over with dispose(). Each step frees
//    Options::step_bytes of them and trims right after; one step per event-loop turn, so other
//    work runs in between (1-6 ms a step on a busy 2-core VM, 2.5 ms on average).
//  - released() reports memory freed elsewhere. A trim follows once Options::min_released has
//    added up, at most once per Options::min_interval, or on the next turn once a step's worth has.
//
// Who reports: a purged or deleted queue disposes of its ready messages (ReadyMessages::clear); a
// queue reports each 65,536 messages taken from it (ReadyMessages::take_released, checked where it
// releases paused publishers: a subtraction and a compare); the message store disposes of the ack
// records of a purge once they are synced (MessageStoreOptions::dispose). The journal's big write
// buffers are mappings of their own and need no trim (store::ByteBuffer).
#pragma once

#include <chrono>
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
    // Reports adding up to less than this wait for more (so little is soon reused anyway).
    uint64_t min_released = uint64_t{2} << 20;
    // From the report that crossed min_released to the trim: reports in between join it.
    std::chrono::milliseconds delay{50};
    // Between two trims, unless a step's worth is waiting.
    std::chrono::milliseconds min_interval{1000};
    // Freed per step (disposed containers), and the amount reported that trims on the next turn.
    // With 4 MB, steps measured 1-6 ms (2.5 ms on average) on a busy 2-core VM.
    uint64_t step_bytes = uint64_t{4} << 20;
  };
  // Gives free heap back to the OS: malloc_trim(0) by default; unit tests count calls instead.
  using TrimFn = std::function<void()>;
  // Frees about `budget` bytes of a disposed container; returns the bytes it freed, 0 when
  // nothing was left.
  using DisposeStep = std::function<uint64_t(uint64_t budget)>;

  explicit MemoryTrimmer(boost::asio::io_context& io);
  MemoryTrimmer(boost::asio::io_context& io, Options options, TrimFn trim = {});
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // About `bytes` of heap memory went back to the allocator.
  void released(uint64_t bytes);
  // Takes over a container to free in steps. What it holds must not need anything that may be
  // gone by then (steps run on later turns, or at destruction).
  void dispose(DisposeStep step);

  struct Stats {
    uint64_t trims = 0;
    uint64_t disposed_steps = 0;
    double last_step_ms = 0;  // wall time of the last step (its share of disposals and the trim)
    double max_step_ms = 0;
  };
  const Stats& stats() const { return stats_; }
  uint64_t pending() const { return pending_; }
  bool disposing() const { return !disposals_.empty(); }

  // Resident set size of this process in bytes (/proc/self/statm); 0 if unknown.
  static uint64_t rss_bytes();

 private:
  void schedule(std::chrono::steady_clock::time_point at);
  void step();

  Options options_;
  TrimFn trim_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point timer_at_{};  // when the armed timer fires ({}: not armed)
  std::chrono::steady_clock::time_point last_trim_{};
  uint64_t pending_ = 0;  // reported since the last trim
  std::deque<DisposeStep> disposals_;  // oldest first
  // A run of steps (one release) for the summary logged when it ends.
  uint64_t run_rss_before_ = 0;
  uint32_t run_steps_ = 0;
  double run_max_ms_ = 0;
  Stats stats_;
};

}  // namespace warren::broker
