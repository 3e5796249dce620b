#include "store/segment_io.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace warren::store {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

}  // namespace

void UniqueFd::reset(int fd) {
  // close() errors are ignored on purpose: durability comes from fdatasync, never from close.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

SegmentIo& SegmentIo::posix() {
  static SegmentIo io;
  return io;
}

std::error_code SegmentIo::open(const std::string& path, int flags, UniqueFd* out) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return last_error();
  out->reset(fd);
  return {};
}

std::error_code SegmentIo::pwritev(int fd, const iovec* iov, int count, uint64_t offset) {
  // Fast path: one call writes everything (always, on a local filesystem with space left).
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  ssize_t n;
  do n = ::pwritev(fd, iov, count, static_cast<off_t>(offset));
  while (n < 0 && errno == EINTR);
  if (n < 0) return last_error();
  if (static_cast<size_t>(n) == total) return {};

  // Short write (e.g. the disk filled up midway): continue from a mutable copy of the vector,
  // so the next call reports the real error (ENOSPC) instead of us guessing one.
  std::vector<iovec> rest(iov, iov + count);
  size_t idx = 0;
  size_t done = static_cast<size_t>(n);
  offset += done;
  while (true) {
    while (idx < rest.size() && done >= rest[idx].iov_len) done -= rest[idx++].iov_len;
    if (idx == rest.size()) return {};
    rest[idx].iov_base = static_cast<char*>(rest[idx].iov_base) + done;
    rest[idx].iov_len -= done;
    int cnt = static_cast<int>(std::min<size_t>(rest.size() - idx, IOV_MAX));
    do n = ::pwritev(fd, rest.data() + idx, cnt, static_cast<off_t>(offset));
    while (n < 0 && errno == EINTR);
    if (n < 0) return last_error();
    if (n == 0) return std::make_error_code(std::errc::no_space_on_device);
    done = static_cast<size_t>(n);
    offset += done;
  }
}

std::error_code SegmentIo::pread(int fd, char* buf, size_t size, uint64_t offset, size_t* done) {
  *done = 0;
  while (*done < size) {
    ssize_t n = ::pread(fd, buf + *done, size - *done, static_cast<off_t>(offset + *done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) break;
    *done += static_cast<size_t>(n);
  }
  return {};
}

std::error_code SegmentIo::fdatasync(int fd) {
  // No retry on EINTR-like failures: after a failed fsync Linux may already have dropped the dirty
  // pages, so a retry can "succeed" without the data ever reaching disk (the 2018 fsyncgate).
  if (::fdatasync(fd) != 0) return last_error();
  return {};
}

std::error_code SegmentIo::ftruncate(int fd, uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return last_error();
  return {};
}

std::error_code SegmentIo::file_size(int fd, uint64_t* size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return last_error();
  *size = static_cast<uint64_t>(st.st_size);
  return {};
}

std::error_code SegmentIo::fsync_dir(const std::string& dir) {
  UniqueFd fd;
  if (auto ec = open(dir, O_RDONLY | O_DIRECTORY, &fd)) return ec;
  if (::fsync(fd.get()) != 0) return last_error();
  return {};
}

std::error_code SegmentIo::unlink(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return last_error();
  return {};
}

std::error_code SegmentIo::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return last_error();
  return {};
}

}  // namespace warren::store
