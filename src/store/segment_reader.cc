#include "store/segment_reader.h"

#include <algorithm>
#include <cstring>

namespace warren::store {

SegmentScanner::SegmentScanner(SegmentIo& io, int fd, size_t chunk_size)
    : io_(io), fd_(fd), chunk_(std::max<size_t>(chunk_size, 4096)) {}

std::error_code SegmentScanner::open() {
  if (auto ec = io_.file_size(fd_, &file_size_)) return error_ = ec;
  cap_ = std::min<size_t>(chunk_, std::max<uint64_t>(file_size_, kSegmentHeaderSize));
  buf_ = std::make_unique_for_overwrite<char[]>(cap_);
  if (!refill(kSegmentHeaderSize)) return error_;
  header_ = decode_segment_header(std::string_view(buf_.get() + begin_, end_ - begin_));
  if (header_) begin_ += kSegmentHeaderSize;
  return {};
}

// Makes at least `need` unconsumed bytes available unless the file ends first. False only on an
// I/O error.
bool SegmentScanner::refill(size_t need) {
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    buf_pos_ += begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (need > cap_) {  // one record larger than the chunk: grow to fit exactly that record
    auto bigger = std::make_unique_for_overwrite<char[]>(need);
    std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = need;
  }
  while (end_ < need && !eof_) {
    size_t got = 0;
    if (auto ec = io_.pread(fd_, buf_.get() + end_, cap_ - end_, buf_pos_ + end_, &got)) {
      error_ = ec;
      return false;
    }
    if (got == 0) eof_ = true;
    end_ += got;
  }
  return true;
}

bool SegmentScanner::next(Record* r, uint32_t* offset) {
  if (!header_ || error_ || stop_ != DecodeStatus::kOk) return false;
  while (true) {
    std::string_view avail(buf_.get() + begin_, end_ - begin_);
    DecodeStatus st = decode_record(avail, r);
    if (st == DecodeStatus::kOk && buf_pos_ + begin_ + r->size > UINT32_MAX) {
      st = DecodeStatus::kBadLength;  // the writer never makes a segment this big: not ours
    } else if (st == DecodeStatus::kOk) {
      *offset = static_cast<uint32_t>(buf_pos_ + begin_);
      begin_ += r->size;
      valid_end_ = buf_pos_ + begin_;
      return true;
    }
    if (st == DecodeStatus::kTruncated && !eof_) {
      size_t need = kRecordPrefixSize;
      if (avail.size() >= kRecordPrefixSize) {
        uint32_t length;
        std::memcpy(&length, avail.data(), 4);
        need += length;  // bounded: decode_record rejected impossible lengths already
      }
      if (!refill(need)) return false;
      continue;
    }
    if (!(st == DecodeStatus::kTruncated && avail.empty())) stop_ = st;  // empty + eof = clean end
    return false;
  }
}

std::error_code extract_message(std::string_view bytes, std::string* body) {
  Record r;
  if (decode_record(bytes, &r) != DecodeStatus::kOk || r.type != RecordType::kMessage ||
      r.size != bytes.size())
    return StoreErrc::kCorruptRecord;
  body->assign(r.body);
  return {};
}

std::error_code read_message_at(SegmentIo& io, int fd, const Position& pos, std::string* body) {
  if (pos.size < kMessageOverhead) return StoreErrc::kCorruptRecord;
  body->resize(pos.size);
  size_t got = 0;
  if (auto ec = io.pread(fd, body->data(), pos.size, pos.offset, &got)) return ec;
  if (got != pos.size) return StoreErrc::kCorruptRecord;
  Record r;
  if (decode_record(*body, &r) != DecodeStatus::kOk || r.type != RecordType::kMessage ||
      r.size != pos.size)
    return StoreErrc::kCorruptRecord;
  // Shift the body to the front in place rather than copying it into a second buffer.
  body->erase(0, kMessageOverhead);
  return {};
}

}  // namespace warren::store
