#include "store/segment_format.h"

#include <cstring>
#include <string>

#include "store/crc32c.h"

namespace warren::store {
namespace {

void put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint32_t header_crc(const char* h) {
  uint32_t c = crc32c(0, h, 12);
  return crc32c(c, h + 16, kSegmentHeaderSize - 16);
}

// The record CRC skips its own field: length bytes, then everything after the prefix.
uint32_t record_crc(const char* r, uint32_t length) {
  uint32_t c = crc32c(0, r, 4);
  return crc32c(c, r + kRecordPrefixSize, length);
}

void put_header(char* out, RecordType type, uint64_t seq, uint32_t length, uint64_t q, uint64_t m) {
  put32(out, length);
  out[8] = static_cast<char>(type);
  put64(out + 9, seq);
  put64(out + kRecordHeaderSize, q);
  put64(out + kRecordHeaderSize + 8, m);
}

class Category : public std::error_category {
 public:
  const char* name() const noexcept override { return "warren.store"; }
  std::string message(int c) const override {
    switch (static_cast<StoreErrc>(c)) {
      case StoreErrc::kCorruptRecord:
        return "corrupt journal record";
      case StoreErrc::kNoSuchSegment:
        return "journal segment does not exist";
      case StoreErrc::kTooLarge:
        return "message body too large for the journal";
      case StoreErrc::kNotOpen:
        return "message store is not open";
      case StoreErrc::kSegmentFailed:
        return "journal segment poisoned by an earlier I/O error";
    }
    return "unknown store error";
  }
};

}  // namespace

const std::error_category& store_category() {
  static const Category c;
  return c;
}

void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderSize]) {
  std::memcpy(out, kSegmentMagic, 8);
  put32(out + 8, kSegmentVersion);
  put32(out + 12, 0);
  put64(out + 16, h.segment_id);
  put64(out + 24, h.base_seq);
  put32(out + 12, header_crc(out));
}

std::optional<SegmentHeader> decode_segment_header(std::string_view b) {
  if (b.size() < kSegmentHeaderSize) return std::nullopt;
  const char* p = b.data();
  if (std::memcmp(p, kSegmentMagic, 8) != 0) return std::nullopt;
  if (get32(p + 8) != kSegmentVersion) return std::nullopt;
  if (get32(p + 12) != header_crc(p)) return std::nullopt;
  return SegmentHeader{get64(p + 16), get64(p + 24)};
}

void encode_message(char* out, uint64_t seq, uint64_t queue_id, uint64_t msg_id,
                    std::span<const std::string_view> parts, size_t body_size) {
  uint32_t length = static_cast<uint32_t>(message_record_size(body_size) - kRecordPrefixSize);
  put_header(out, RecordType::kMessage, seq, length, queue_id, msg_id);
  char* p = out + kMessageOverhead;
  for (std::string_view part : parts) {
    if (part.empty()) continue;  // memcpy from a null data() is UB even for size 0
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  put32(out + 4, record_crc(out, length));
}

void encode_ack(char* out, uint64_t seq, uint64_t queue_id, uint64_t msg_id) {
  uint32_t length = static_cast<uint32_t>(kAckRecordSize - kRecordPrefixSize);
  put_header(out, RecordType::kAck, seq, length, queue_id, msg_id);
  put32(out + 4, record_crc(out, length));
}

const char* to_string(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kOk:
      return "ok";
    case DecodeStatus::kTruncated:
      return "truncated record";
    case DecodeStatus::kZeros:
      return "zero bytes";
    case DecodeStatus::kBadLength:
      return "invalid length";
    case DecodeStatus::kBadCrc:
      return "checksum mismatch";
    case DecodeStatus::kBadType:
      return "unknown record type";
  }
  return "?";
}

DecodeStatus decode_record(std::string_view in, Record* out) {
  if (in.size() < kRecordPrefixSize) return DecodeStatus::kTruncated;
  const char* p = in.data();
  uint32_t length = get32(p);
  uint32_t crc = get32(p + 4);
  if (length == 0 && crc == 0) return DecodeStatus::kZeros;
  // Checked before reading `length` bytes, so garbage cannot make recovery read 4 GiB.
  if (length < kMessageOverhead - kRecordPrefixSize ||
      length > message_record_size(kMaxBodySize) - kRecordPrefixSize)
    return DecodeStatus::kBadLength;
  if (in.size() - kRecordPrefixSize < length) return DecodeStatus::kTruncated;
  if (record_crc(p, length) != crc) return DecodeStatus::kBadCrc;
  auto type = static_cast<RecordType>(static_cast<uint8_t>(p[8]));
  if (type != RecordType::kMessage && type != RecordType::kAck) return DecodeStatus::kBadType;
  if (type == RecordType::kAck && length != kAckRecordSize - kRecordPrefixSize)
    return DecodeStatus::kBadLength;
  out->type = type;
  out->seq = get64(p + 9);
  out->queue_id = get64(p + kRecordHeaderSize);
  out->msg_id = get64(p + kRecordHeaderSize + 8);
  out->size = static_cast<uint32_t>(kRecordPrefixSize + length);
  out->body = type == RecordType::kMessage
                  ? std::string_view(p + kMessageOverhead, out->size - kMessageOverhead)
                  : std::string_view();
  return DecodeStatus::kOk;
}

}  // namespace warren::store
