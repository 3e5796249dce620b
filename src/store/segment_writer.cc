#include "store/segment_writer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace warren::store {
namespace {

// A batch that grew past this (a backlog while the disk was slow, or a huge message) gives the
// memory back when recycled instead of pinning it forever.
constexpr size_t kKeepCapacity = size_t{8} << 20;

}  // namespace

char* ByteBuffer::grow(size_t n) {
  if (size_ + n > cap_) reallocate(std::max({size_ + n, cap_ * 2, size_t{64} << 10}));
  char* p = data_ + size_;
  size_ += n;
  return p;
}

void ByteBuffer::reallocate(size_t cap) {
  if (cap < kMapThreshold) {
    char* bigger = new char[cap];
    if (size_ > 0) std::memcpy(bigger, data_, size_);
    delete[] data_;  // never mapped below the threshold: the buffer only grows
    data_ = bigger;
    cap_ = cap;
    return;
  }
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  cap = (cap + page - 1) / page * page;
  void* p;
  if (mapped_) {
#if defined(__linux__)
    p = ::mremap(data_, cap_, cap, MREMAP_MAYMOVE);
#else
    p = ::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      std::memcpy(p, data_, size_);
      ::munmap(data_, cap_);
    }
#endif
  } else {
    p = ::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      if (size_ > 0) std::memcpy(p, data_, size_);
      delete[] data_;
    }
  }
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<char*>(p);
  cap_ = cap;
  mapped_ = true;
}

void ByteBuffer::release() {
  if (mapped_) {
    ::munmap(data_, cap_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  size_ = cap_ = 0;
  mapped_ = false;
}

void Batch::clear() {
  if (bytes.capacity() > kKeepCapacity) bytes.release();
  bytes.clear();
  extents.clear();
  deletes.clear();
  first_seq = last_seq = 0;
}

std::optional<std::string_view> Batch::find(const Position& pos) const {
  for (const Extent& e : extents) {
    if (e.segment != pos.segment || pos.offset < e.file_offset ||
        uint64_t{pos.offset} + pos.size > e.file_offset + e.length)
      continue;
    return std::string_view(bytes.data() + e.buf_offset + (pos.offset - e.file_offset), pos.size);
  }
  return std::nullopt;
}

SegmentWriter::SegmentWriter(uint32_t segment_size, uint32_t segment_id, uint64_t next_seq)
    : segment_size_(segment_size),
      active_(segment_id),
      next_seq_(next_seq),
      batch_(std::make_unique<Batch>()) {
  roll(segment_id);
}

void SegmentWriter::roll(uint32_t segment_id) {
  active_ = segment_id;
  offset_ = 0;
  char* h = reserve(kSegmentHeaderSize, 0);
  encode_segment_header(SegmentHeader{segment_id, next_seq_}, h);
}

// Claims n bytes at the tail of the active segment, extending the batch's last extent when it is
// contiguous (the common case: one extent per batch).
char* SegmentWriter::reserve(size_t n, uint64_t seq) {
  Batch& b = *batch_;
  size_t buf_offset = b.bytes.size();
  char* p = b.bytes.grow(n);
  if (!b.extents.empty() && b.extents.back().segment == active_ &&
      b.extents.back().file_offset + b.extents.back().length == offset_) {
    b.extents.back().length += n;
  } else {
    b.extents.push_back(Extent{active_, static_cast<uint32_t>(offset_), buf_offset, n});
  }
  offset_ += n;
  if (seq != 0) {
    if (b.first_seq == 0) b.first_seq = seq;
    b.last_seq = seq;
  }
  return p;
}

SegmentWriter::Appended SegmentWriter::append_message(uint64_t queue_id, uint64_t msg_id,
                                                      std::span<const std::string_view> parts,
                                                      size_t body_size) {
  size_t size = message_record_size(body_size);
  Position pos{active_, static_cast<uint32_t>(offset_), static_cast<uint32_t>(size)};
  uint64_t seq = next_seq_++;
  encode_message(reserve(size, seq), seq, queue_id, msg_id, parts, body_size);
  return {pos, seq};
}

SegmentWriter::Appended SegmentWriter::append_ack(uint64_t queue_id, uint64_t msg_id) {
  Position pos{active_, static_cast<uint32_t>(offset_), static_cast<uint32_t>(kAckRecordSize)};
  uint64_t seq = next_seq_++;
  encode_ack(reserve(kAckRecordSize, seq), seq, queue_id, msg_id);
  return {pos, seq};
}

std::unique_ptr<Batch> SegmentWriter::swap_batch(std::unique_ptr<Batch> fresh) {
  fresh->clear();
  std::swap(fresh, batch_);
  return fresh;
}

}  // namespace warren::store
