#include "store/sync_gate_io.h"

#include <sys/stat.h>

#include <chrono>
#include <spdlog/spdlog.h>
#include <thread>

namespace warren::store {

bool SyncGateIo::gate_closed() const {
  struct stat st;
  return ::stat(gate_path_.c_str(), &st) == 0;
}

std::error_code SyncGateIo::fdatasync(int fd) {
  if (gate_closed()) {
    spdlog::warn("sync gate: holding fdatasync while {} exists", gate_path_);
    // Polling is fine here: this is a test hook on the sync thread, and a millisecond of
    // latency after the test removes the file changes nothing it observes.
    do std::this_thread::sleep_for(std::chrono::milliseconds(1));
    while (gate_closed());
    spdlog::warn("sync gate: released");
  }
  return SegmentIo::fdatasync(fd);
}

}  // namespace warren::store
