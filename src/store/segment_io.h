// File access for the journal: an owning fd and the syscalls the store makes, behind one virtual
// interface so tests can inject EIO/ENOSPC without a full disk (and a future io_uring or O_DIRECT
// backend has one place to go).
//
// Calls are made from two threads (the owner thread reads and recovers, the sync thread writes and
// syncs); the POSIX implementation is stateless, and test doubles must be thread-safe.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

namespace warren::store {

// Closes its descriptor on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

class SegmentIo {
 public:
  virtual ~SegmentIo() = default;

  // The process-wide POSIX implementation.
  static SegmentIo& posix();

  virtual std::error_code open(const std::string& path, int flags, UniqueFd* out);
  // Writes every byte of the iovecs at `offset` (retrying short writes) or returns the error.
  virtual std::error_code pwritev(int fd, const iovec* iov, int count, uint64_t offset);
  // Reads up to `size` bytes; fewer only at end of file. *done = bytes read.
  virtual std::error_code pread(int fd, char* buf, size_t size, uint64_t offset, size_t* done);
  virtual std::error_code fdatasync(int fd);
  virtual std::error_code ftruncate(int fd, uint64_t size);
  virtual std::error_code file_size(int fd, uint64_t* size);
  // fsync on the directory: makes created, renamed and unlinked entries durable.
  virtual std::error_code fsync_dir(const std::string& dir);
  virtual std::error_code unlink(const std::string& path);
  virtual std::error_code rename(const std::string& from, const std::string& to);
};

}  // namespace warren::store
