// AMQP framing: parse_frame status codes and the frame writers.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "amqp/frame.h"
#include "amqp/methods.h"

namespace warren::amqp {
namespace {

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
    out.push_back(' ');
  }
  return out;
}

// basic.ack{delivery_tag=1, multiple=true} on channel 1.
const std::string kAckPayload = B({0x00, 0x3C, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 1, 0x01});
const std::string kAckFrame = B({0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0D}) + kAckPayload + B({0xCE});

TEST(FrameTest, ProtocolHeader) {
  EXPECT_EQ(hex(kProtocolHeader), hex(B({'A', 'M', 'Q', 'P', 0, 0, 9, 1})));
  EXPECT_EQ(kFrameOverhead, 8u);
}

TEST(FrameTest, ParseCompleteFrame) {
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(kAckFrame, 131072, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.type, 1);
  EXPECT_EQ(f.channel, 1);
  EXPECT_EQ(hex(f.payload), hex(kAckPayload));
  EXPECT_EQ(consumed, 21u);
}

TEST(FrameTest, ParseConsumesOnlyTheFirstOfSeveralFrames) {
  std::string hb = B({0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xCE});
  std::string data = kAckFrame + hb + B({0x03, 0x12});  // + start of a third frame
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(data, 4088, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(consumed, 21u);
  EXPECT_EQ(f.type, 1);
  std::string_view rest = std::string_view(data).substr(consumed);
  ASSERT_EQ(parse_frame(rest, 4088, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(consumed, 8u);
  EXPECT_EQ(f.type, 8);
  EXPECT_EQ(f.channel, 0);
  EXPECT_EQ(f.payload.size(), 0u);
  rest = rest.substr(consumed);
  EXPECT_EQ(parse_frame(rest, 4088, &f, &consumed), ParseStatus::kNeedMore);
}

TEST(FrameTest, EveryPartialFrameNeedsMore) {
  for (size_t n = 0; n < kAckFrame.size(); ++n) {
    Frame f;
    size_t consumed = 0;
    EXPECT_EQ(parse_frame(std::string_view(kAckFrame).substr(0, n), 131072, &f, &consumed),
              ParseStatus::kNeedMore)
        << "prefix " << n;
  }
}

TEST(FrameTest, PayloadViewPointsIntoTheInput) {
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(kAckFrame, 131072, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.payload.data(), kAckFrame.data() + 7);
}

TEST(FrameTest, ChannelAndSizeAreBigEndian) {
  std::string data = B({0x03, 0xAB, 0xCD, 0x00, 0x00, 0x01, 0x02});
  data += std::string(0x102, 'p');
  data += B({0xCE});
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(data, 0x102, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.type, 3);
  EXPECT_EQ(f.channel, 0xABCD);
  EXPECT_EQ(f.payload.size(), 0x102u);
  EXPECT_EQ(consumed, 0x102u + 8);
}

TEST(FrameTest, OversizedFrameIsReportedFromTheHeaderAlone) {
  // Declared size 4089 > max 4088: reported as soon as the 7-byte header is there.
  std::string header = B({0x03, 0x00, 0x01, 0x00, 0x00, 0x0F, 0xF9});
  Frame f;
  size_t consumed = 0;
  EXPECT_EQ(parse_frame(header, 4088, &f, &consumed), ParseStatus::kTooLarge);
  // A huge declared size never makes us wait for the bytes.
  std::string huge = B({0x01, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF});
  EXPECT_EQ(parse_frame(huge, 131072, &f, &consumed), ParseStatus::kTooLarge);
  // Exactly max_payload is fine.
  std::string ok = B({0x03, 0x00, 0x01, 0x00, 0x00, 0x0F, 0xF8}) + std::string(4088, 'x') + B({0xCE});
  EXPECT_EQ(parse_frame(ok, 4088, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(consumed, 4096u);
  EXPECT_EQ(parse_frame(ok, 4087, &f, &consumed), ParseStatus::kTooLarge);
}

TEST(FrameTest, BadFrameEnd) {
  for (int end : {0x00, 0xCD, 0xCF, 0xFF}) {
    std::string data = kAckFrame;
    data.back() = static_cast<char>(end);
    Frame f;
    size_t consumed = 0;
    EXPECT_EQ(parse_frame(data, 131072, &f, &consumed), ParseStatus::kBadFrameEnd) << end;
  }
  // Zero-length payload with a wrong end octet.
  std::string hb = B({0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  Frame f;
  size_t consumed = 0;
  EXPECT_EQ(parse_frame(hb, 131072, &f, &consumed), ParseStatus::kBadFrameEnd);
}

TEST(FrameTest, WriteMethodFrame) {
  BasicAck a;
  a.delivery_tag = 1;
  a.multiple = true;
  std::string out = "prefix";
  write_method(out, 1, a);
  EXPECT_EQ(hex(out), hex("prefix" + kAckFrame));

  ConnectionTune t;
  t.channel_max = 2047;
  t.frame_max = 131072;
  t.heartbeat = 60;
  std::string tune;
  write_method(tune, 0, t);
  EXPECT_EQ(hex(tune), hex(B({0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x00, 0x0A, 0x00, 0x1E,
                              0x07, 0xFF, 0x00, 0x02, 0x00, 0x00, 0x00, 0x3C, 0xCE})));
}

TEST(FrameTest, WriteMethodThenParseAndDecode) {
  QueueDeclareOk ok;
  ok.queue = "amq.gen-abc";
  ok.message_count = 42;
  ok.consumer_count = 3;
  std::string out;
  write_method(out, 7, ok);
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(out, 131072, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(consumed, out.size());
  EXPECT_EQ(f.type, kFrameMethod);
  EXPECT_EQ(f.channel, 7);
  Reader r(f.payload);
  EXPECT_EQ(r.u16(), 50);
  EXPECT_EQ(r.u16(), 11);
  QueueDeclareOk d;
  ASSERT_TRUE(d.decode(r));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(d.queue, "amq.gen-abc");
  EXPECT_EQ(d.message_count, 42u);
  EXPECT_EQ(d.consumer_count, 3u);
}

TEST(FrameTest, WriteContentHeader) {
  std::string props = B({0x90, 0x00, 10, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 0x02});
  std::string out;
  write_content_header(out, 5, 10000, props);
  std::string expected = B({0x02, 0x00, 0x05, 0x00, 0x00, 0x00, 26,  // type, channel, size 12+14
                            0x00, 0x3C, 0x00, 0x00,                  // class 60, weight 0
                            0, 0, 0, 0, 0, 0, 0x27, 0x10}) +         // body size 10000
                         props + B({0xCE});
  EXPECT_EQ(hex(out), hex(expected));
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(out, 4088, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.type, kFrameHeader);
  EXPECT_EQ(f.payload.size(), 26u);
}

TEST(FrameTest, WriteContentHeaderLargeBodySize) {
  std::string out;
  write_content_header(out, 1, 0x0102030405060708ULL, B({0, 0}));
  EXPECT_EQ(hex(out), hex(B({0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 14, 0x00, 0x3C, 0x00, 0x00, 1, 2,
                             3, 4, 5, 6, 7, 8, 0, 0, 0xCE})));
}

TEST(FrameTest, WriteBodySplitsByFrameMax) {
  std::string body(10000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31 + 7);
  std::string out;
  write_body(out, 3, body, 4096);
  std::string_view rest = out;
  std::string joined;
  std::vector<size_t> sizes;
  while (!rest.empty()) {
    Frame f;
    size_t consumed = 0;
    ASSERT_EQ(parse_frame(rest, 4088, &f, &consumed), ParseStatus::kFrame);
    EXPECT_EQ(f.type, kFrameBody);
    EXPECT_EQ(f.channel, 3);
    EXPECT_LE(f.payload.size(), 4088u);
    EXPECT_LE(consumed, 4096u);
    sizes.push_back(f.payload.size());
    joined.append(f.payload);
    rest.remove_prefix(consumed);
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{4088, 4088, 1824}));
  EXPECT_EQ(joined, body);
  EXPECT_EQ(out.size(), 10000u + 3 * 8);
}

TEST(FrameTest, WriteBodyExactMultipleAndSingleFrame) {
  std::string body(8176, 'b');  // exactly 2 * 4088
  std::string out;
  write_body(out, 1, body, 4096);
  EXPECT_EQ(out.size(), 8176u + 16);
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(out, 4088, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.payload.size(), 4088u);
  ASSERT_EQ(parse_frame(std::string_view(out).substr(consumed), 4088, &f, &consumed),
            ParseStatus::kFrame);
  EXPECT_EQ(f.payload.size(), 4088u);

  std::string small;
  write_body(small, 2, "hello", 4096);
  EXPECT_EQ(hex(small),
            hex(B({0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0xCE})));

  std::string fit;
  write_body(fit, 1, std::string(4088, 'f'), 4096);  // payload exactly frame_max - 8
  EXPECT_EQ(fit.size(), 4096u);
}

TEST(FrameTest, WriteBodyFrameMaxZeroMeansUnlimited) {
  std::string body(200000, 'z');
  std::string out;
  write_body(out, 1, body, 0);
  EXPECT_EQ(out.size(), body.size() + 8);
  Frame f;
  size_t consumed = 0;
  ASSERT_EQ(parse_frame(out, 1u << 20, &f, &consumed), ParseStatus::kFrame);
  EXPECT_EQ(f.payload, body);
}

TEST(FrameTest, EmptyBodyWritesNoFrames) {
  std::string out = "keep";
  write_body(out, 1, "", 4096);
  EXPECT_EQ(out, "keep");
  write_body(out, 1, "", 0);
  EXPECT_EQ(out, "keep");
}

TEST(FrameTest, WriteBodyAppends) {
  std::string out = "xy";
  write_body(out, 1, "a", 4096);
  EXPECT_EQ(hex(out), hex("xy" + B({0x03, 0x00, 0x01, 0, 0, 0, 1, 'a', 0xCE})));
}

TEST(FrameTest, WriteHeartbeat) {
  std::string out = "z";
  write_heartbeat(out);
  EXPECT_EQ(hex(out), hex("z" + B({0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xCE})));
}

// write_delivery is a hand-written fast path: it must give exactly the bytes of the generic
// writers, for every body size around the frame boundaries and for the longest short strings.
TEST(FrameTest, WriteDeliveryMatchesTheGenericWriters) {
  std::string long_name(300, 'x');  // truncated to 255 by both
  std::string props = B({0x90, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', 0x02});
  for (size_t body_size : {size_t{0}, size_t{1}, size_t{16}, size_t{4087}, size_t{4088},
                           size_t{4089}, size_t{8176}, size_t{10000}}) {
    std::string body(body_size, '\0');
    for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 13 + 1);
    for (const std::string& name : {std::string("amq.ctag-1"), long_name}) {
      for (uint32_t frame_max : {4096u, 0u}) {
        BasicDeliver m{name, 0x0102030405060708ULL, body_size % 2 == 1, "ex", name};
        std::string expected = "prefix";
        write_method(expected, 7, m);
        write_content_header(expected, 7, body.size(), props);
        write_body(expected, 7, body, frame_max);
        std::string got = "prefix";
        write_delivery(got, 7, m, props, body, frame_max);
        EXPECT_EQ(hex(got), hex(expected)) << "body " << body_size << " frame_max " << frame_max
                                           << " name " << name.size();
      }
    }
  }
}

}  // namespace
}  // namespace warren::amqp
