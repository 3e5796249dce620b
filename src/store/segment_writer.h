// Owner-thread side of appending: encodes records into an in-memory batch and assigns each one
// its segment, offset and seq. No syscalls here -- the batch is written by the sync thread
// (group_commit.h) -- so append_message() costs one memcpy of the body plus a CRC.
//
// Like Redpanda's segment_appender, the writer only ever appends at the tail of the active
// segment; unlike it, rolling is logical: the new segment's header simply becomes the first bytes
// of its first extent, and the sync thread creates the file when it sees offset 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "store/segment_format.h"

namespace warren::store {

// A growable byte buffer that, unlike std::vector<char>::resize, never zero-fills what it is
// about to overwrite.
//
// From kMapThreshold on, the buffer is its own mmap (grown with mremap, without a copy) rather
// than heap memory: a batch that grows to tens of MB (a purge's acks, a compaction pass) would
// otherwise go through malloc, whose threshold for using mmap rises to 32 MB after the first such
// buffer is freed, and leave that much free but resident heap behind at every growth step and
// release (measured: 30-80 MB given back by each malloc_trim during a drain with compaction).
class ByteBuffer {
 public:
  static constexpr size_t kMapThreshold = size_t{1} << 20;
  ByteBuffer() = default;
  ~ByteBuffer() { release(); }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  // Returns room for n more bytes at the end; valid until the next grow().
  char* grow(size_t n);
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  void clear() { size_ = 0; }
  void release();

 private:
  void reallocate(size_t cap);
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
  bool mapped_ = false;  // data_ is an mmap of cap_ bytes, else from operator new[]
};

// A run of batch bytes that goes to one contiguous range of one segment file.
struct Extent {
  uint32_t segment = 0;
  uint32_t file_offset = 0;  // 0 = this extent starts with the segment header: create the file
  size_t buf_offset = 0;
  size_t length = 0;
};

// What flush() hands the sync thread: the records of one (or a few) event-loop turns.
// Immutable once submitted; the sync thread and the owner's read() may then read it concurrently.
struct Batch {
  ByteBuffer bytes;
  std::vector<Extent> extents;    // in log order
  std::vector<uint32_t> deletes;  // segments to unlink once the writes before them are done
  uint64_t first_seq = 0;         // seqs of the records in `bytes`; 0 when it holds none
  uint64_t last_seq = 0;

  bool empty() const { return extents.empty() && deletes.empty(); }
  // Keeps capacity for reuse, except an unusually large buffer, which is returned to the heap.
  void clear();
  // The bytes of the record at `pos`, if this batch holds it.
  std::optional<std::string_view> find(const Position& pos) const;
};

class SegmentWriter {
 public:
  // Starts segment `segment_id` (its header goes into the first batch) with seqs from next_seq.
  SegmentWriter(uint32_t segment_size, uint32_t segment_id, uint64_t next_seq);

  uint32_t active_segment() const { return active_; }
  uint64_t next_seq() const { return next_seq_; }
  // True when a record of `record_size` bytes does not fit the active segment. A record larger
  // than a whole segment gets a segment of its own (so the answer is false on an empty segment).
  bool would_overflow(size_t record_size) const {
    return offset_ > kSegmentHeaderSize && offset_ + record_size > segment_size_;
  }
  // Seals the active segment and starts `segment_id` (> active).
  void roll(uint32_t segment_id);

  struct Appended {
    Position pos;
    uint64_t seq;
  };
  Appended append_message(uint64_t queue_id, uint64_t msg_id,
                          std::span<const std::string_view> parts, size_t body_size);
  Appended append_ack(uint64_t queue_id, uint64_t msg_id);
  void add_delete(uint32_t segment) { batch_->deletes.push_back(segment); }

  const Batch& batch() const { return *batch_; }
  // Hands out the current batch and continues in `fresh` (an empty one).
  std::unique_ptr<Batch> swap_batch(std::unique_ptr<Batch> fresh);

 private:
  char* reserve(size_t n, uint64_t seq);

  uint32_t segment_size_;
  uint32_t active_;
  uint64_t offset_ = 0;  // next write offset in the active segment
  uint64_t next_seq_;
  std::unique_ptr<Batch> batch_;
};

}  // namespace warren::store
