// The control socket's address: DATA_DIR/warren.sock. A Unix socket path holds at most 107
// bytes; a longer one is reached through the directory's descriptor (/proc/self/fd/N/...),
// which Linux resolves like the directory itself. Shared by warren-server and warrenctl.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace warren {

inline constexpr const char* kControlSocketName = "warren.sock";

// Holds the directory descriptor that a long path goes through while the path is in use.
class ControlSocketPath {
 public:
  explicit ControlSocketPath(const std::string& data_dir) {
    full_ = data_dir + "/" + kControlSocketName;
    if (full_.size() < 100) {
      usable_ = full_;
      return;
    }
    dir_fd_ = ::open(data_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    usable_ = dir_fd_ >= 0 ? "/proc/self/fd/" + std::to_string(dir_fd_) + "/" + kControlSocketName
                           : full_;
  }
  ~ControlSocketPath() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
  }
  ControlSocketPath(const ControlSocketPath&) = delete;
  ControlSocketPath& operator=(const ControlSocketPath&) = delete;

  const std::string& full() const { return full_; }      // for messages
  const std::string& usable() const { return usable_; }  // for bind/connect/unlink

 private:
  std::string full_, usable_;
  int dir_fd_ = -1;
};

}  // namespace warren
