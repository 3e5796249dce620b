// On-disk format of the message journal: segment header and records.
//
// A segment is DIR/msgs/NNNNNNNNNN.seg: a 32-byte header, then records back to back, no padding,
// no footer. Everything is little-endian (x86 and arm64 are; a static_assert guards the rest).
//
//   header  0: magic "WRNSEG01" | 8: u32 version | 12: u32 crc32c(header with this field zeroed)
//          16: u64 segment id (must match the file name) | 24: u64 base seq (first seq it may hold)
//   record  0: u32 length = bytes after the 8-byte prefix (type + seq + payload)
//           4: u32 crc32c over bytes [0,4) and [8, 8+length) -- covers the length, so a torn or
//              zeroed length is caught as well as a torn body
//           8: u8 type | 9: u64 seq | 17: payload
//   MESSAGE payload: u64 queue id, u64 msg id, body (opaque; the caller's parts concatenated)
//   ACK     payload: u64 queue id, u64 msg id
//
// Why these choices: length first so a reader can skip a record without parsing it; CRC32C
// (hardware on x86) per record so recovery can cut a torn tail at the exact last good record, as
// Redpanda's log_replayer does; the seq in every record is what group commit reports as durable.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

namespace warren::store {

// Errors the store itself detects (I/O errors come through as std::generic_category errno codes).
enum class StoreErrc {
  kCorruptRecord = 1,  // a record failed its checksum or does not match the Position asked for
  kNoSuchSegment,      // the Position names a segment that was deleted or never existed
  kTooLarge,           // body above kMaxBodySize
  kNotOpen,            // open() has not succeeded
  kSegmentFailed,      // the batch targeted a segment an earlier write or sync failure poisoned
};
const std::error_category& store_category();
inline std::error_code make_error_code(StoreErrc e) {
  return {static_cast<int>(e), store_category()};
}

static_assert(std::endian::native == std::endian::little, "journal encoding assumes little-endian");

inline constexpr char kSegmentMagic[8] = {'W', 'R', 'N', 'S', 'E', 'G', '0', '1'};
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 32;

inline constexpr size_t kRecordPrefixSize = 8;                            // length + crc
inline constexpr size_t kRecordHeaderSize = kRecordPrefixSize + 9;        // + type + seq
inline constexpr size_t kIdsSize = 16;                                    // queue id + msg id
inline constexpr size_t kMessageOverhead = kRecordHeaderSize + kIdsSize;  // 33 bytes
inline constexpr size_t kAckRecordSize = kRecordHeaderSize + kIdsSize;    // 33 bytes
// RabbitMQ's hard ceiling for max_message_size is 512 MiB; records above it are refused, which
// also keeps every offset and length inside a u32.
inline constexpr size_t kMaxBodySize = size_t{512} << 20;

enum class RecordType : uint8_t { kMessage = 1, kAck = 2 };

// Where a record lives. 12 bytes, so the broker can keep one per paged-out message.
struct Position {
  uint32_t segment = 0;
  uint32_t offset = 0;  // of the record's first byte in the segment file
  uint32_t size = 0;    // whole record, prefix included
  friend bool operator==(const Position&, const Position&) = default;
};

struct SegmentHeader {
  uint64_t segment_id = 0;
  uint64_t base_seq = 0;
};

void encode_segment_header(const SegmentHeader& h, char out[kSegmentHeaderSize]);
// nullopt when the magic, version or header CRC is wrong.
std::optional<SegmentHeader> decode_segment_header(std::string_view bytes);

inline constexpr size_t message_record_size(size_t body_size) {
  return kMessageOverhead + body_size;
}

// Writes a MESSAGE record into out[0, message_record_size(body_size)); body_size must equal the
// parts' total size. The parts are copied straight into `out` (no intermediate concatenation).
void encode_message(char* out, uint64_t seq, uint64_t queue_id, uint64_t msg_id,
                    std::span<const std::string_view> parts, size_t body_size);
// Writes an ACK record into out[0, kAckRecordSize).
void encode_ack(char* out, uint64_t seq, uint64_t queue_id, uint64_t msg_id);

// A decoded record; `body` points into the decoder's input.
struct Record {
  RecordType type = RecordType::kMessage;
  uint64_t seq = 0;
  uint64_t queue_id = 0;
  uint64_t msg_id = 0;
  std::string_view body;  // empty for ACK
  uint32_t size = 0;      // whole record
};

enum class DecodeStatus : uint8_t {
  kOk,
  kTruncated,  // the input ends inside the record (a torn write if this is the end of the file)
  kZeros,      // length and crc both zero: unwritten space (e.g. a hole after a crash)
  kBadLength,  // length impossible for any record type
  kBadCrc,
  kBadType,
};
const char* to_string(DecodeStatus s);

DecodeStatus decode_record(std::string_view in, Record* out);

}  // namespace warren::store

template <>
struct std::is_error_code_enum<warren::store::StoreErrc> : std::true_type {};
