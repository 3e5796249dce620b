#include "perf/workers.h"

namespace warren::perf {

void Worker::run() {
  if (!open(15s) || !setup()) {
    if (!failed()) {  // stopped while setting up: not an error
      close();
      stats_.done.store(true, std::memory_order_release);
      return;
    }
    std::string err = error().empty() ? "setup failed" : error();
    close();
    stats_.error = err;
    stats_.failed.store(true, std::memory_order_release);
    stats_.done.store(true, std::memory_order_release);
    return;
  }
  stats_.ready.store(true, std::memory_order_release);
  if (!ended()) {
    io().restart();
    io().run();
  }
  if (failed()) {
    stats_.error = error();
    stats_.failed.store(true, std::memory_order_release);
  }
  stats_.done.store(true, std::memory_order_release);
}

void Worker::post_begin(uint64_t start_ns) {
  asio::post(io(), [this, start_ns] {
    if (ended() || closing()) return;
    start_ns_ = start_ns;
    running_ = true;
    begin();
  });
}

void Worker::post_stop() {
  asio::post(io(), [this] {
    running_ = false;
    stop();
  });
}

void Worker::finish() {
  running_ = false;
  stats_.finished.store(true, std::memory_order_release);
  begin_close();
}

}  // namespace warren::perf
