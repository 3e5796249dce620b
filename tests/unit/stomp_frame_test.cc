// The STOMP frame codec (stomp/frame_parser.h, stomp/frame.h) against RabbitMQ's grammar:
// noise between frames, CR LF, escapes in every version, content-length bodies with NULs,
// malformed frames and the frame size limit.
#include <gtest/gtest.h>

#include "stomp/frame.h"
#include "stomp/frame_parser.h"

namespace warren::stomp {
namespace {

using namespace std::string_literals;
constexpr size_t kMax = 1 << 20;

ParseStatus parse(std::string_view in, Frame* f, size_t* used = nullptr, size_t max = kMax) {
  size_t u = 0;
  std::string error;
  ParseStatus st = parse_frame(in, max, f, &u, &error);
  if (used) *used = u;
  return st;
}

TEST(StompFrame, ReadsCommandHeadersAndBodyAfterHeartBeats) {
  Frame f;
  size_t used = 0;
  std::string in = std::string("\n\r\n\0", 4) + "SEND\ndestination:/queue/a\nk:v\n\nhello" +
                   std::string("\0", 1) + "rest";
  ASSERT_EQ(parse(in, &f, &used), ParseStatus::kFrame);
  EXPECT_EQ(f.command, "SEND");
  ASSERT_EQ(f.headers.size(), 2u);
  EXPECT_EQ(*f.header("destination"), "/queue/a");
  EXPECT_EQ(f.body, "hello");
  EXPECT_EQ(in.substr(used), "rest");
}

TEST(StompFrame, CrLfCountsAsLf) {
  Frame f;
  ASSERT_EQ(parse(std::string("SEND\r\na:b\r\n\r\nx\0", 16), &f), ParseStatus::kFrame);
  EXPECT_EQ(*f.header("a"), "b");
  EXPECT_EQ(f.body, "x");
}

TEST(StompFrame, UnescapesHeadersAndKeepsTheFirstOfARepeatedName) {
  Frame f;
  ASSERT_EQ(parse(std::string("SEND\na\\cb:c\\\\d\\ne\\rf:g\na\\cb:second\n\n\0", 38), &f),
            ParseStatus::kFrame);
  ASSERT_EQ(f.headers.size(), 1u);
  EXPECT_EQ(f.headers[0].first, "a:b");
  EXPECT_EQ(f.headers[0].second, "c\\d\ne\rf:g");  // colons may stay unescaped in a value
}

TEST(StompFrame, ContentLengthBodyMayHoldNuls) {
  Frame f;
  std::string in = std::string("SEND\ncontent-length:3\n\na\0b\0", 27);
  ASSERT_EQ(parse(in, &f), ParseStatus::kFrame);
  EXPECT_EQ(f.body, std::string("a\0b", 3));
  // Only SEND's body is read by its length: any other frame ends at the first NUL.
  ASSERT_EQ(parse(std::string("MESSAGE\ncontent-length:3\n\na\0b\0", 30), &f),
            ParseStatus::kFrame);
  EXPECT_EQ(f.body, "a");
}

TEST(StompFrame, IncompleteFramesNeedMore) {
  Frame f;
  std::string whole = std::string("SEND\ncontent-length:5\n\nhello\0", 29);
  for (size_t n = 0; n < whole.size(); ++n)
    EXPECT_EQ(parse(whole.substr(0, n), &f), ParseStatus::kNeedMore) << n;
  EXPECT_EQ(parse(whole, &f), ParseStatus::kFrame);
  EXPECT_EQ(parse("SEND\r", &f), ParseStatus::kNeedMore);
}

TEST(StompFrame, MalformedFrames) {
  Frame f;
  EXPECT_EQ(parse(std::string("SEND\nnovalue\n\n\0", 15), &f), ParseStatus::kMalformed);
  EXPECT_EQ(parse(std::string("SEND\na:b\\tc\n\n\0", 14), &f), ParseStatus::kMalformed);
  EXPECT_EQ(parse(std::string("SEND\rX\n\n\0", 9), &f), ParseStatus::kMalformed);
  EXPECT_EQ(parse("\rX", &f), ParseStatus::kMalformed);
  EXPECT_EQ(parse(std::string("SEND\ncontent-length:x\n\n\0", 24), &f), ParseStatus::kMalformed);
  // The byte after content-length bytes must be the NUL.
  EXPECT_EQ(parse(std::string("SEND\ncontent-length:1\n\nab\0", 26), &f), ParseStatus::kMalformed);
}

TEST(StompFrame, FramesOverTheLimitAreRefusedBeforeTheyArrive) {
  Frame f;
  EXPECT_EQ(parse("SEND\ncontent-length:5000\n\n", &f, nullptr, 1000), ParseStatus::kTooLarge);
  EXPECT_EQ(parse(std::string("SEND\n\n") + std::string(2000, 'x'), &f, nullptr, 1000),
            ParseStatus::kTooLarge);
  EXPECT_EQ(parse(std::string("SEND\n\n") + std::string(500, 'x') + std::string(1, '\0'), &f,
                  nullptr, 1000),
            ParseStatus::kFrame);
}

TEST(StompFrame, WritesEscapedHeadersTheBodyLengthNulAndTrailingLf) {
  std::string out;
  write_frame(out, "MESSAGE", {{"a:b", "c\nd\\"}, {"content-length", "999"}}, std::string("x\0y", 3));
  EXPECT_EQ(out, "MESSAGE\na\\cb:c\\nd\\\\\ncontent-length:3\n\nx\0y\0\n"s);
  out.clear();
  write_frame(out, "RECEIPT", {{"receipt-id", "r"}}, "");
  EXPECT_EQ(out, "RECEIPT\nreceipt-id:r\n\n\0\n"s);
}

TEST(StompFrame, BooleanHeadersAcceptPythonSpellings) {
  Frame f;
  f.headers = {{"a", "True"}, {"b", "false"}, {"c", "yes"}};
  EXPECT_EQ(f.boolean("a"), true);
  EXPECT_EQ(f.boolean("b"), false);
  EXPECT_EQ(f.boolean("c"), std::nullopt);
  EXPECT_EQ(f.boolean("d"), std::nullopt);
}

}  // namespace
}  // namespace warren::stomp
