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

using Clock = std::chrono::steady_clock;

void malloc_trim_all() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
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
    : options_(options), trim_(trim ? std::move(trim) : TrimFn(malloc_trim_all)), timer_(io) {}

MemoryTrimmer::~MemoryTrimmer() = default;

void MemoryTrimmer::released(uint64_t bytes) {
  pending_ += bytes;
  if (pending_ >= options_.step_bytes) {
    schedule(Clock::now());  // more waiting would make the trim longer than a step
  } else if (pending_ >= options_.min_released) {
    schedule(std::max(Clock::now() + options_.delay, last_trim_ + options_.min_interval));
  }
}

void MemoryTrimmer::dispose(DisposeStep step) {
  disposals_.push_back(std::move(step));
  schedule(Clock::now());
}

void MemoryTrimmer::schedule(Clock::time_point at) {
  if (timer_at_ != Clock::time_point{} && timer_at_ <= at) return;
  timer_at_ = at;
  timer_.expires_at(at);  // cancels an armed later wait: its handler sees operation_aborted
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;  // cancelled, or the trimmer is gone: touch nothing
    timer_at_ = {};
    step();
  });
}

void MemoryTrimmer::step() {
  auto t0 = Clock::now();
  if (run_steps_ == 0) run_rss_before_ = rss_bytes();
  // Free one step's worth of the disposed containers, oldest first...
  uint64_t budget = options_.step_bytes;
  while (budget > 0 && !disposals_.empty()) {
    uint64_t freed = disposals_.front()(budget);
    if (freed == 0) {
      disposals_.pop_front();
    } else {
      budget -= std::min(budget, freed);
    }
  }
  // ...then give back what that freed, with everything reported since the last trim.
  bool trace = spdlog::should_log(spdlog::level::trace);
  uint64_t trace_rss = trace ? rss_bytes() : 0;
  auto t1 = Clock::now();
  trim_();
  last_trim_ = Clock::now();
  auto ms_between = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  if (trace)
    spdlog::trace("memory: step {}: freed {} KB of disposals in {:.2f} ms, trim {} -> {} KB in "
                  "{:.2f} ms", run_steps_ + 1, (options_.step_bytes - budget) >> 10,
                  ms_between(t0, t1), trace_rss >> 10, rss_bytes() >> 10,
                  ms_between(t1, last_trim_));
  pending_ = 0;
  double ms = ms_between(t0, last_trim_);
  ++stats_.trims;
  if (budget < options_.step_bytes) ++stats_.disposed_steps;
  stats_.last_step_ms = ms;
  stats_.max_step_ms = std::max(stats_.max_step_ms, ms);
  ++run_steps_;
  run_max_ms_ = std::max(run_max_ms_, ms);
  if (!disposals_.empty()) {
    schedule(Clock::now());  // the next step on a later turn: other handlers run in between
    return;
  }
  uint64_t after = rss_bytes();
  auto level = run_rss_before_ > after + (uint64_t{64} << 20) ? spdlog::level::info
                                                               : spdlog::level::debug;
  spdlog::log(level, "memory: RSS {} -> {} MB, freed heap given back in {} step(s) of at most "
              "{:.1f} ms", run_rss_before_ >> 20, after >> 20, run_steps_, run_max_ms_);
  run_steps_ = 0;
  run_max_ms_ = 0;
}

}  // namespace warren::broker
