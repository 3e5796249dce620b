// Reading the journal back: a sequential scanner for recovery and a positional read for bodies
// that were paged out of RAM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "store/segment_format.h"
#include "store/segment_io.h"

namespace warren::store {

// Walks one segment file record by record with large sequential reads (default 4 MiB), verifying
// every CRC. Stops at the end of the file or at the first record that does not verify; what comes
// after that point is, by construction of group commit, bytes that were never reported durable
// (see message_store.h), so recovery cuts the file there.
class SegmentScanner {
 public:
  SegmentScanner(SegmentIo& io, int fd, size_t chunk_size = size_t{4} << 20);

  // Reads the file size and header. An error, or header() == nullopt for a bad header.
  std::error_code open();
  const std::optional<SegmentHeader>& header() const { return header_; }

  // The next good record and its file offset; `r->body` stays valid until the next call.
  // False at the end: then check error(), stop_reason() and valid_end().
  bool next(Record* r, uint32_t* offset);

  std::error_code error() const { return error_; }
  // kOk for a clean end of file; otherwise why the scan stopped early.
  DecodeStatus stop_reason() const { return stop_; }
  // End of the last good record (kSegmentHeaderSize if none): where the file should be cut.
  uint64_t valid_end() const { return valid_end_; }
  uint64_t file_size() const { return file_size_; }

 private:
  bool refill(size_t need);

  SegmentIo& io_;
  int fd_;
  size_t chunk_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;      // first unconsumed byte in buf_
  size_t end_ = 0;        // end of valid data in buf_
  uint64_t buf_pos_ = 0;  // file offset of buf_[0]
  uint64_t file_size_ = 0;
  uint64_t valid_end_ = kSegmentHeaderSize;
  bool eof_ = false;
  DecodeStatus stop_ = DecodeStatus::kOk;
  std::error_code error_;
  std::optional<SegmentHeader> header_;
};

// Reads the MESSAGE record at `pos` from `fd`, verifies it and stores its body in *body (the
// string is reused, so a caller that keeps one buffer does not allocate per read).
std::error_code read_message_at(SegmentIo& io, int fd, const Position& pos, std::string* body);

// Same check for a record already in memory (`bytes` = exactly the record).
std::error_code extract_message(std::string_view bytes, std::string* body);

}  // namespace warren::store
