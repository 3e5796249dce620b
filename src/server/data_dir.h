// The data directory: created on first start and locked so a second server cannot share it.
#pragma once

#include <string>

namespace warren::server {

class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();
  // Creates dir if needed and takes an exclusive lock on dir/.lock. False with *error on failure.
  bool acquire(const std::string& dir, std::string* error);

 private:
  int fd_ = -1;
};

}  // namespace warren::server
