#include "broker/memory_trimmer.h"

#include <fcntl.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdio>
#include <spdlog/spdlog.h>

namespace warren::broker {

namespace {

bool malloc_trim_all() {
#if defined(__GLIBC__)
  return ::malloc_trim(0) != 0;
#else
  return false;
#endif
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

uint64_t MemoryTrimmer::rss_bytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return uint64_t{resident} * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& io) : MemoryTrimmer(io, Options{}) {}

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& io, Options options, TrimFn trim)
    : io_(io), options_(options), trim_(trim ? std::move(trim) : TrimFn(malloc_trim_all)),
      timer_(io), alive_(std::make_shared<bool>(true)) {}

MemoryTrimmer::~MemoryTrimmer() { *alive_ = false; }

void MemoryTrimmer::released(uint64_t bytes) {
  spdlog::debug("TMP released {}", bytes);
  if (journal_last_seq_) {
    if (uint64_t seq = journal_last_seq_(); seq != 0) {
      awaited_seq_ = std::max(awaited_seq_, seq);
      awaited_bytes_ += bytes;
    }
  }
  pending_ += bytes;
  if (pending_ < options_.min_released) return;
  auto now = std::chrono::steady_clock::now();
  schedule(std::max(now + options_.delay, last_trim_ + options_.min_interval));
}

void MemoryTrimmer::journal_synced(uint64_t last_seq) {
  if (awaited_seq_ == 0 || last_seq < awaited_seq_) return;
  uint64_t bytes = awaited_bytes_;
  awaited_seq_ = awaited_bytes_ = 0;
  pending_ += bytes;
  if (pending_ < options_.min_released) return;
  auto now = std::chrono::steady_clock::now();
  schedule(std::max(now + options_.delay, last_trim_ + options_.min_interval));
}

void MemoryTrimmer::dispose(uint64_t bytes, DisposeStep step) {
  disposals_.push_back(Disposal{bytes, std::move(step)});
  released(bytes);
}

void MemoryTrimmer::schedule(std::chrono::steady_clock::time_point at) {
  if (timer_at_ != std::chrono::steady_clock::time_point{} && timer_at_ <= at) return;
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
    auto a = alive.lock();
    if (ec || !a || !*a) return;
    timer_at_ = {};
    run();
  });
}

void MemoryTrimmer::run() {
  auto t0 = std::chrono::steady_clock::now();
  // One step of the disposed containers, then the trim, which gives back what the step freed
  // along with everything released since the last trim.
  uint64_t budget = options_.step_bytes;
  while (budget > 0 && !disposals_.empty()) {
    Disposal& d = disposals_.front();
    uint64_t done = d.step(budget);
    if (done == 0) {
      disposals_.pop_front();
      continue;
    }
    budget -= std::min(budget, done);
    d.bytes -= std::min(d.bytes, done);
  }
  uint64_t before = rss_bytes();
  trim_();
  uint64_t after = rss_bytes();
  double ms = ms_since(t0);
  last_trim_ = std::chrono::steady_clock::now();
  pending_ = 0;
  ++stats_.trims;
  if (before > after) stats_.trimmed_bytes += before - after;
  stats_.last_trim_ms = ms;
  stats_.max_trim_ms = std::max(stats_.max_trim_ms, ms);
  spdlog::debug("memory: trimmed the heap in {:.1f} ms, RSS {} -> {} MB{}", ms, before >> 20,
                after >> 20, disposals_.empty() ? "" : " (more to dispose of)");
  if (!disposals_.empty()) {
    // The next step after other work of this turn: post, not a timer, so it comes right after.
    timer_at_ = std::chrono::steady_clock::now();
    timer_.expires_at(timer_at_);
    timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](boost::system::error_code ec) {
      auto a = alive.lock();
      if (ec || !a || !*a) return;
      timer_at_ = {};
      run();
    });
  }
}

}  // namespace warren::broker
