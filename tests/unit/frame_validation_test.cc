// What RabbitMQ 3.10.8 accepts in received frames: check_arguments (bytes left over, lengths past
// the end, UTF-8 of short strings), the UTF-8 rule itself, well_formed frames, and the Erlang
// formatting of the reply texts. The cases were checked on a real RabbitMQ 3.10.8 (and Erlang's
// xmerl_ucs:from_utf8 for the UTF-8 rule).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "amqp/frame.h"
#include "amqp/frame_errors.h"
#include "amqp/methods.h"
#include "common/utf8.h"

namespace warren::amqp {
namespace {

std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// queue.declare arguments: reserved short, queue name, flag bits, empty table.
std::string queue_declare(std::string_view name) {
  std::string s = B({0, 0, static_cast<int>(name.size())});
  s += name;
  s += B({0, 0, 0, 0, 0});
  return s;
}

TEST(FrameValidationTest, ArgumentsThatFillThePayloadAreOk) {
  EXPECT_EQ(check_arguments(60, 10, B({0, 0, 0, 0, 0, 1, 0})), ArgumentsCheck::kOk);
  EXPECT_EQ(check_arguments(50, 10, queue_declare("q")), ArgumentsCheck::kOk);
  EXPECT_EQ(check_arguments(90, 10, ""), ArgumentsCheck::kOk);  // tx.select has none
}

TEST(FrameValidationTest, BytesLeftOverAreMalformed) {
  EXPECT_EQ(check_arguments(60, 10, B({0, 0, 0, 0, 0, 1, 0, 'x'})), ArgumentsCheck::kMalformed);
  EXPECT_EQ(check_arguments(90, 10, "x"), ArgumentsCheck::kMalformed);
  EXPECT_EQ(check_arguments(20, 10, B({0, 'z'})), ArgumentsCheck::kMalformed);  // channel.open
}

TEST(FrameValidationTest, ShortstrLengthPastTheEndIsMalformed) {
  EXPECT_EQ(check_arguments(50, 10, B({0, 0, 255, 'a', 'b', 'c'})), ArgumentsCheck::kMalformed);
  EXPECT_EQ(check_arguments(60, 40, B({0, 0, 0, 200, 'a', 'b', 'c'})),
            ArgumentsCheck::kMalformed);
}

TEST(FrameValidationTest, ShortstrsOfMethodsWithoutContentMustBeUtf8) {
  EXPECT_EQ(check_arguments(50, 10, queue_declare("bad\xff")), ArgumentsCheck::kBadUtf8);
  // The reserved out-of-band string of channel.open is checked too.
  EXPECT_EQ(check_arguments(20, 10, B({1, 0xff})), ArgumentsCheck::kBadUtf8);
  // Malformed wins: the payload must parse before any string is looked at.
  EXPECT_EQ(check_arguments(50, 10, queue_declare("bad\xff") + "zz"), ArgumentsCheck::kMalformed);
}

TEST(FrameValidationTest, ContentMethodsAreNotCheckedForUtf8) {
  // basic.publish to exchange "x\xffy" with routing key "\xff".
  EXPECT_EQ(check_arguments(60, 40, B({0, 0, 3, 'x', 0xff, 'y', 1, 0xff, 0})),
            ArgumentsCheck::kOk);
}

TEST(FrameValidationTest, UnknownMethods) {
  EXPECT_EQ(check_arguments(60, 99, ""), ArgumentsCheck::kUnknownMethod);
  EXPECT_EQ(check_arguments(99, 10, ""), ArgumentsCheck::kUnknownMethod);
}

struct Outcome {
  std::string on(const BasicQos&) { return "qos"; }
  template <class M>
  std::string on(const M&) {
    return "other";
  }
  std::string on_unknown_method(uint16_t, uint16_t) { return "unknown"; }
  std::string on_malformed_method(uint16_t, uint16_t, std::string_view) { return "malformed"; }
};

TEST(FrameValidationTest, DispatchReportsBytesLeftOverAsMalformed) {
  Outcome h;
  std::string ok = B({0, 0, 0, 0, 0, 1, 0});
  Reader r(ok);
  EXPECT_EQ(dispatch_method(60, 10, r, h), "qos");
  std::string longer = ok + "x";
  Reader r2(longer);
  EXPECT_EQ(dispatch_method(60, 10, r2, h), "malformed");
}

TEST(FrameValidationTest, Utf8AsRabbitMqReadsIt) {
  for (std::string_view ok : {"", "abc", "\xc2\x80", "\xc3\xa9", "\xe0\xa0\x80", "\xe2\x82\xac",
                              "\xef\xbf\xbe", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
                              "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                              // Accepted by xmerl_ucs although not Unicode: surrogates and code
                              // points above U+10FFFF (up to U+1FFFFF).
                              "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                              "\xf7\xbf\xbf\xbf"})
    EXPECT_TRUE(is_rabbit_utf8(ok)) << testing::PrintToString(ok);
  EXPECT_TRUE(is_rabbit_utf8(std::string_view("a\0b", 3)));
  for (std::string_view bad : {"\xff", "\xfe", "\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
                               "\xe0\x9f\xbf", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xe2\x82",
                               "\xc2", "\xe0\xa0", "\xf7\xbf\xbf", "\xc2\x41", "\xe2\x28\xa1",
                               "\xf0\x90\x80\x41", "\xf8\x88\x80\x80\x80",
                               "\xfc\x84\x80\x80\x80\x80", "ok\xff"})
    EXPECT_FALSE(is_rabbit_utf8(bad)) << testing::PrintToString(bad);
}

TEST(FrameValidationTest, WellFormedFrames) {
  EXPECT_TRUE(well_formed(Frame{kFrameMethod, 1, B({0, 60, 0, 10})}));
  EXPECT_FALSE(well_formed(Frame{kFrameMethod, 1, B({0, 60})}));
  EXPECT_TRUE(well_formed(Frame{kFrameHeader, 1, std::string(12, '\0')}));
  EXPECT_FALSE(well_formed(Frame{kFrameHeader, 1, std::string(11, '\0')}));
  EXPECT_TRUE(well_formed(Frame{kFrameBody, 1, ""}));
  EXPECT_TRUE(well_formed(Frame{kFrameHeartbeat, 0, ""}));
  EXPECT_FALSE(well_formed(Frame{kFrameHeartbeat, 0, "abc"}));
  EXPECT_FALSE(well_formed(Frame{4, 1, "abc"}));
}

TEST(FrameValidationTest, ErlangFormatting) {
  EXPECT_EQ(erlang_binary(""), "<<>>");
  EXPECT_EQ(erlang_binary(std::string_view("abc\0\xc8", 5)), "<<97,98,99,0,200>>");
  EXPECT_EQ(erlang_binary_pretty(""), "<<>>");
  EXPECT_EQ(erlang_binary_pretty("abc"), "<<\"abc\">>");
  EXPECT_EQ(erlang_binary_pretty("a\v\b\f\r\"\\"), "<<\"a\\v\\b\\f\\r\\\"\\\\\">>");
  EXPECT_EQ(erlang_binary_pretty("tab\there\x1b"), "<<\"tab\\there\\e\">>");
  EXPECT_EQ(erlang_binary_pretty("\xc8\xc9" "A"), "<<\"\xc8\xc9" "A\">>");  // Latin-1
  EXPECT_EQ(erlang_binary_pretty(B({1, 2, 3})), "<<1,2,3>>");
  EXPECT_EQ(erlang_binary_pretty("abc\x7f"), "<<97,98,99,127>>");
}

TEST(FrameValidationTest, ReplyTexts) {
  EXPECT_EQ(unknown_frame(Frame{kFrameHeartbeat, 0, "abc"}).text,
            "FRAME_ERROR - type 8, all octets = <<\"abc\">>: unknown_frame");
  EXPECT_EQ(unknown_frame(Frame{kFrameHeartbeat, 0, "0123456789abcdefXYZ"}).text,
            "FRAME_ERROR - type 8, first 16 octets = <<\"0123456789abcdef\">>: unknown_frame");
  AmqpError e = unexpected_frame(Frame{kFrameHeartbeat, 1, ""});
  EXPECT_EQ(e.code, kUnexpectedFrame);
  EXPECT_EQ(e.text, "UNEXPECTED_FRAME - type 8, all octets = <<>>");
  EXPECT_EQ(frame_too_large(kFrameBody, 4097, 4096).text,
            "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}");
  EXPECT_EQ(bad_frame_end(Frame{kFrameMethod, 1, B({0, 60, 0, 10})}, 0).text,
            "FRAME_ERROR - type 1, all octets = <<0,60,0,10>>: {invalid_frame_end_marker,0}");
  AmqpError d = cannot_decode(60, 10, B({0, 0, 0, 0, 0, 1, 0, 'x'}));
  EXPECT_EQ(d.text, "FRAME_ERROR - cannot decode <<0,0,0,0,0,1,0,120>>");
  EXPECT_EQ(d.class_id, 60);
  EXPECT_EQ(d.method_id, 10);
  AmqpError u = malformed_utf8();
  EXPECT_EQ(u.code, kFrameError);
  EXPECT_EQ(u.text, "FRAME_ERROR - Malformed UTF-8 in shortstr");
  EXPECT_EQ(u.class_id, 0);
}

}  // namespace
}  // namespace warren::amqp
