// The journal's building blocks: CRC32C, record and header encoding, the segment scanner's
// handling of damaged tails, the owner-side writer (batches, extents, rolling) and the GC rules.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "store/crc32c.h"
#include "store/segment_format.h"
#include "store/segment_io.h"
#include "store/segment_reader.h"
#include "store/segment_set.h"
#include "store/segment_writer.h"

namespace warren::store {
namespace {

std::string message_bytes(uint64_t seq, uint64_t q, uint64_t m, std::string_view body) {
  std::string out(message_record_size(body.size()), '\0');
  std::string_view parts[] = {body};
  encode_message(out.data(), seq, q, m, parts, body.size());
  return out;
}

// ---------------------------------------------------------------- CRC32C

TEST(StoreCrc32cTest, KnownVectors) {
  EXPECT_EQ(crc32c(0, "", 0), 0u);
  EXPECT_EQ(crc32c(0, std::string_view("123456789")), 0xE3069283u);  // the standard check value
  EXPECT_EQ(crc32c_software(0, "123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(0, zeros), 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(0, ones), 0x62A8AB43u);  // RFC 3720 B.4: 32 bytes of 0xff
}

TEST(StoreCrc32cTest, HardwareMatchesSoftwareAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(4096 + 16, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t align = 0; align < 8; ++align)
    for (size_t len : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096})
      ASSERT_EQ(crc32c(0, data.data() + align, len), crc32c_software(0, data.data() + align, len))
          << "align " << align << " len " << len;
  // Chaining: crc(a + b) == crc(crc(a), b).
  EXPECT_EQ(crc32c(crc32c(0, data.data(), 100), data.data() + 100, 900),
            crc32c(0, data.data(), 1000));
  RecordProperty("crc32c_hardware", crc32c_hardware_available() ? "yes" : "no");
}

// ---------------------------------------------------------------- records and headers

TEST(StoreRecordTest, MessageRoundTripWithParts) {
  std::string_view parts[] = {"exchange", "", "routing.key", std::string_view("\0\1props", 7),
                              "body!"};
  size_t body = 0;
  for (auto p : parts) body += p.size();
  std::string buf(message_record_size(body), '\0');
  encode_message(buf.data(), 42, 7, 99, parts, body);

  Record r;
  ASSERT_EQ(decode_record(buf, &r), DecodeStatus::kOk);
  EXPECT_EQ(r.type, RecordType::kMessage);
  EXPECT_EQ(r.seq, 42u);
  EXPECT_EQ(r.queue_id, 7u);
  EXPECT_EQ(r.msg_id, 99u);
  EXPECT_EQ(r.size, buf.size());
  EXPECT_EQ(r.body, std::string("exchangerouting.key") + std::string("\0\1props", 7) + "body!");
}

TEST(StoreRecordTest, AckRoundTrip) {
  std::string buf(kAckRecordSize, '\0');
  encode_ack(buf.data(), 5, 1, 2);
  Record r;
  ASSERT_EQ(decode_record(buf, &r), DecodeStatus::kOk);
  EXPECT_EQ(r.type, RecordType::kAck);
  EXPECT_EQ(r.seq, 5u);
  EXPECT_EQ(r.queue_id, 1u);
  EXPECT_EQ(r.msg_id, 2u);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.size, kAckRecordSize);
}

TEST(StoreRecordTest, EmptyBody) {
  std::string buf = message_bytes(1, 2, 3, "");
  Record r;
  ASSERT_EQ(decode_record(buf, &r), DecodeStatus::kOk);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(buf.size(), kMessageOverhead);
}

TEST(StoreRecordTest, EveryFlippedBitIsDetected) {
  std::string good = message_bytes(9, 1, 2, "hello world");
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] ^= static_cast<char>(1 << bit);
      Record r;
      EXPECT_NE(decode_record(bad, &r), DecodeStatus::kOk) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(StoreRecordTest, TruncatedZerosAndBadLength) {
  std::string good = message_bytes(9, 1, 2, "hello world");
  Record r;
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_EQ(decode_record(std::string_view(good).substr(0, n), &r), DecodeStatus::kTruncated)
        << n;
  EXPECT_EQ(decode_record(std::string(64, '\0'), &r), DecodeStatus::kZeros);
  std::string huge = good;
  huge[3] = '\x7f';  // length ~2 GiB: rejected before anyone tries to read that much
  EXPECT_EQ(decode_record(huge, &r), DecodeStatus::kBadLength);
  std::string tiny = good;
  tiny[0] = 3;
  tiny[1] = tiny[2] = tiny[3] = 0;
  EXPECT_EQ(decode_record(tiny, &r), DecodeStatus::kBadLength);
}

TEST(StoreSegmentHeaderTest, RoundTripAndCorruption) {
  char h[kSegmentHeaderSize];
  encode_segment_header(SegmentHeader{17, 12345}, h);
  auto d = decode_segment_header(std::string_view(h, sizeof h));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->segment_id, 17u);
  EXPECT_EQ(d->base_seq, 12345u);
  for (size_t i = 0; i < sizeof h; ++i) {
    char bad[kSegmentHeaderSize];
    std::memcpy(bad, h, sizeof h);
    bad[i] ^= 0x10;
    EXPECT_FALSE(decode_segment_header(std::string_view(bad, sizeof bad))) << i;
  }
  EXPECT_FALSE(decode_segment_header(std::string_view(h, sizeof h - 1)));
}

// ---------------------------------------------------------------- scanner

class StoreSegmentScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-seg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/0000000001.seg";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Header + `n` message records with bodies "body-<i>" of ~`pad` bytes.
  std::string segment(int n, size_t pad = 0) {
    std::string s(kSegmentHeaderSize, '\0');
    encode_segment_header(SegmentHeader{1, 1}, s.data());
    for (int i = 1; i <= n; ++i) s += message_bytes(i, 1, i, body(i, pad));
    return s;
  }
  static std::string body(int i, size_t pad) {
    return "body-" + std::to_string(i) + std::string(pad, 'x');
  }
  void write(const std::string& bytes) {
    FILE* f = fopen(path_.c_str(), "wb");
    ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    fclose(f);
  }
  struct Scan {
    std::vector<uint64_t> seqs;
    DecodeStatus stop;
    uint64_t valid_end, file_size;
  };
  Scan scan(size_t chunk = 4096) {
    UniqueFd fd;
    EXPECT_FALSE(SegmentIo::posix().open(path_, O_RDONLY, &fd));
    SegmentScanner sc(SegmentIo::posix(), fd.get(), chunk);
    EXPECT_FALSE(sc.open());
    EXPECT_TRUE(sc.header());
    Scan out;
    Record r;
    uint32_t off;
    while (sc.next(&r, &off)) {
      out.seqs.push_back(r.seq);
      EXPECT_EQ(r.body, body(static_cast<int>(r.seq), pad_));
    }
    EXPECT_FALSE(sc.error());
    out.stop = sc.stop_reason();
    out.valid_end = sc.valid_end();
    out.file_size = sc.file_size();
    return out;
  }

  std::string dir_, path_;
  size_t pad_ = 0;
};

TEST_F(StoreSegmentScanTest, CleanFileAcrossChunkBoundaries) {
  pad_ = 100;
  std::string s = segment(500, pad_);  // ~70 KB through a 4 KiB window
  write(s);
  Scan r = scan();
  EXPECT_EQ(r.seqs.size(), 500u);
  EXPECT_EQ(r.stop, DecodeStatus::kOk);
  EXPECT_EQ(r.valid_end, s.size());
}

TEST_F(StoreSegmentScanTest, RecordLargerThanTheReadChunk) {
  pad_ = 20000;
  std::string s = segment(3, pad_);
  write(s);
  Scan r = scan(4096);
  EXPECT_EQ(r.seqs.size(), 3u);
  EXPECT_EQ(r.valid_end, s.size());
}

TEST_F(StoreSegmentScanTest, TruncatedMidRecord) {
  std::string s = segment(10);
  size_t end9 = segment(9).size();
  write(s.substr(0, s.size() - 5));
  Scan r = scan();
  EXPECT_EQ(r.seqs.size(), 9u);
  EXPECT_EQ(r.stop, DecodeStatus::kTruncated);
  EXPECT_EQ(r.valid_end, end9);
  EXPECT_EQ(r.file_size - r.valid_end, s.size() - 5 - end9);
}

TEST_F(StoreSegmentScanTest, GarbageAndZerosAfterTheLastRecord) {
  std::string s = segment(10);
  write(s + std::string(100, '\0'));
  Scan z = scan();
  EXPECT_EQ(z.seqs.size(), 10u);
  EXPECT_EQ(z.stop, DecodeStatus::kZeros);
  EXPECT_EQ(z.valid_end, s.size());

  std::mt19937 rng(1);
  std::string garbage(1000, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  write(s + garbage);
  Scan g = scan();
  EXPECT_EQ(g.seqs.size(), 10u);
  EXPECT_NE(g.stop, DecodeStatus::kOk);
  EXPECT_EQ(g.valid_end, s.size());
}

TEST_F(StoreSegmentScanTest, FlippedByteInTheLastRecord) {
  std::string s = segment(10);
  s[s.size() - 3] ^= 0x01;
  write(s);
  Scan r = scan();
  EXPECT_EQ(r.seqs.size(), 9u);
  EXPECT_EQ(r.stop, DecodeStatus::kBadCrc);
  EXPECT_EQ(r.valid_end, segment(9).size());
}

TEST_F(StoreSegmentScanTest, PositionalReadVerifiesTheRecord) {
  std::string s = segment(3);
  write(s);
  UniqueFd fd;
  ASSERT_FALSE(SegmentIo::posix().open(path_, O_RDONLY, &fd));
  uint32_t off2 = static_cast<uint32_t>(segment(1).size());
  uint32_t size2 = static_cast<uint32_t>(message_record_size(body(2, 0).size()));
  std::string out;
  ASSERT_FALSE(read_message_at(SegmentIo::posix(), fd.get(), Position{1, off2, size2}, &out));
  EXPECT_EQ(out, body(2, 0));
  // A wrong offset or size is caught by the CRC/length check, not returned as data.
  EXPECT_EQ(read_message_at(SegmentIo::posix(), fd.get(), Position{1, off2 + 1, size2}, &out),
            make_error_code(StoreErrc::kCorruptRecord));
  EXPECT_EQ(read_message_at(SegmentIo::posix(), fd.get(), Position{1, off2, size2 + 1}, &out),
            make_error_code(StoreErrc::kCorruptRecord));
}

// ---------------------------------------------------------------- writer

TEST(StoreSegmentWriterTest, BatchesExtentsAndRolling) {
  SegmentWriter w(4096, 1, 1);
  EXPECT_EQ(w.batch().extents.size(), 1u);  // the header of segment 1
  EXPECT_EQ(w.batch().extents[0].file_offset, 0u);
  std::string body(1000, 'a');
  std::string_view parts[] = {body};
  std::vector<SegmentWriter::Appended> a;
  for (int i = 0; i < 3; ++i) a.push_back(w.append_message(1, i, parts, body.size()));
  EXPECT_EQ(a[0].pos.offset, kSegmentHeaderSize);
  EXPECT_EQ(a[1].pos.offset, kSegmentHeaderSize + message_record_size(1000));
  EXPECT_EQ(a[2].seq, 3u);
  EXPECT_EQ(w.batch().extents.size(), 1u);  // contiguous: still one extent
  EXPECT_TRUE(w.would_overflow(message_record_size(1000) * 2));
  w.roll(2);
  auto b = w.append_message(1, 9, parts, body.size());
  EXPECT_EQ(b.pos.segment, 2u);
  EXPECT_EQ(b.pos.offset, kSegmentHeaderSize);
  ASSERT_EQ(w.batch().extents.size(), 2u);
  EXPECT_EQ(w.batch().extents[1].segment, 2u);
  EXPECT_EQ(w.batch().extents[1].file_offset, 0u);
  EXPECT_EQ(w.batch().first_seq, 1u);
  EXPECT_EQ(w.batch().last_seq, 4u);
  auto found = w.batch().find(a[1].pos);
  ASSERT_TRUE(found);
  std::string out;
  ASSERT_FALSE(extract_message(*found, &out));
  EXPECT_EQ(out, body);

  auto full = w.swap_batch(std::make_unique<Batch>());
  EXPECT_EQ(full->extents.size(), 2u);
  EXPECT_TRUE(w.batch().empty());
  auto ack = w.append_ack(1, 0);
  EXPECT_EQ(ack.seq, 5u);
  EXPECT_EQ(ack.pos.offset, b.pos.offset + b.pos.size);  // continues where the last batch ended
  // A record bigger than a whole segment does not overflow an empty segment: it gets one alone.
  SegmentWriter w2(4096, 1, 1);
  EXPECT_FALSE(w2.would_overflow(100000));
}

// ---------------------------------------------------------------- GC rules

TEST(StoreSegmentSetTest, DeletesOnlySealedSegmentsWithNothingLive) {
  SegmentSet s;
  s.set_active(1);
  s.on_message(1);
  s.on_ack(1, 1);
  std::vector<uint32_t> out;
  s.collect(&out);
  EXPECT_TRUE(out.empty()) << "the active segment is never deleted";
  s.set_active(2);
  s.collect(&out);
  EXPECT_EQ(out, std::vector<uint32_t>{1});
  EXPECT_FALSE(s.contains(1));
}

TEST(StoreSegmentSetTest, AckHoldingSegmentWaitsForItsTargets) {
  SegmentSet s;
  s.set_active(1);
  s.on_message(1);  // A
  s.on_message(1);  // B
  s.set_active(2);
  s.on_message(2);  // C
  s.on_ack(2, 1);   // ack A, recorded in segment 2
  s.set_active(3);
  s.on_ack(3, 2);  // ack C: segment 2 has nothing live, but holds the ack keeping A dead
  std::vector<uint32_t> out;
  s.collect(&out);
  EXPECT_TRUE(out.empty());
  s.on_ack(3, 1);  // ack B: segment 1 empties, then 2 may follow in the same pass
  s.collect(&out);
  EXPECT_EQ(out, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(s.ids(), std::vector<uint32_t>{3});
}

TEST(StoreSegmentSetTest, AcksForDeletedSegmentsAreIgnored) {
  SegmentSet s;
  s.set_active(5);
  s.on_ack(5, 1);  // message in a segment that no longer exists
  EXPECT_EQ(s.live(5), 0u);
  s.on_message(5);
  EXPECT_EQ(s.live(5), 1u);
}

}  // namespace
}  // namespace warren::store
