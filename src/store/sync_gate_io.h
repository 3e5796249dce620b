// A test hook: SegmentIo that holds every fdatasync while a "gate" file exists.
//
// Why: the broker promises that a publisher confirm and a tx.commit-ok for a persistent message
// leave only after the fdatasync covering it has returned, and that publishers stop being read
// while too many bytes wait for the disk. A kill -9 test cannot tell a write that reached the disk
// from one that only reached the page cache, and a tmpfs syncs instantly, so an integration test
// needs a way to keep a sync from returning for as long as it likes. warren-server installs this
// only when the environment variable WARREN_TEST_SYNC_GATE names a file (and says so in its log).
//
// It waits on the journal's sync thread, never on the event loop. Each held sync logs
// "sync gate: holding fdatasync" once when it starts waiting and "sync gate: released" when it goes
// on, so a test can wait for the condition instead of sleeping.
#pragma once

#include <string>

#include "store/segment_io.h"

namespace warren::store {

class SyncGateIo : public SegmentIo {
 public:
  explicit SyncGateIo(std::string gate_path) : gate_path_(std::move(gate_path)) {}

  std::error_code fdatasync(int fd) override;

 private:
  bool gate_closed() const;

  const std::string gate_path_;
};

}  // namespace warren::store
