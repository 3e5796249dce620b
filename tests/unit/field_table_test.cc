// Field tables: byte-exact round trips for every RabbitMQ field type, hand-written encodings as
// RabbitMQ / pika put them on the wire, typed accessors, rendering, and rejection of malformed input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/field_table.h"
#include "common/wire.h"

namespace warren::amqp {
namespace {

using namespace std::string_literals;

// Builds byte strings readably: B({0x01, 'a'}) etc.
std::string B(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::string u32be(uint32_t v) {
  return B({int(v >> 24) & 0xFF, int(v >> 16) & 0xFF, int(v >> 8) & 0xFF, int(v) & 0xFF});
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

// One table entry "key" -> tag + value bytes.
std::string entry(std::string_view key, std::string_view tag_and_value) {
  std::string s;
  s.push_back(static_cast<char>(key.size()));
  s.append(key);
  s.append(tag_and_value);
  return s;
}

// decode_table(body) must succeed and encode_table_body must reproduce exactly body.
void ExpectRoundTrip(const std::string& body) {
  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value()) << hex(body);
  EXPECT_EQ(hex(encode_table_body(*t)), hex(body));
  std::string framed;
  Writer w(framed);
  encode_table(w, *t);
  EXPECT_EQ(hex(framed), hex(u32be(static_cast<uint32_t>(body.size())) + body));
}

float FloatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
double DoubleFromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Wire primitives.

TEST(WireTest, WriterIsBigEndian) {
  std::string out;
  Writer w(out);
  w.u8(0xAB);
  w.u16(0x1234);
  w.u32(0xDEADBEEF);
  w.u64(0x0102030405060708ULL);
  w.shortstr("hi");
  w.longstr("xyz");
  EXPECT_EQ(hex(out), hex(B({0xAB, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8, 2,
                            'h', 'i', 0, 0, 0, 3, 'x', 'y', 'z'})));
  EXPECT_EQ(w.size(), out.size());
}

TEST(WireTest, ReaderReadsWhatWriterWrote) {
  std::string out;
  Writer w(out);
  w.u8(0xFE);
  w.u16(0xFFFF);
  w.u32(0x80000001);
  w.u64(0xFFFFFFFFFFFFFFFFULL);
  w.shortstr("short");
  w.longstr(std::string(300, 'L'));
  Reader r(out);
  EXPECT_EQ(r.u8(), 0xFE);
  EXPECT_EQ(r.u16(), 0xFFFF);
  EXPECT_EQ(r.u32(), 0x80000001u);
  EXPECT_EQ(r.u64(), 0xFFFFFFFFFFFFFFFFULL);
  EXPECT_EQ(r.shortstr(), "short");
  EXPECT_EQ(r.longstr(), std::string(300, 'L'));
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(WireTest, ReaderPastEndFailsStickyAndYieldsZeros) {
  std::string in = B({0x12, 0x34, 0x56});
  Reader r(in);
  EXPECT_EQ(r.u16(), 0x1234);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.u16(), 0);  // only one byte left
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.u8(), 0);  // sticky: nothing more can be read
  EXPECT_FALSE(r.ok());
}

TEST(WireTest, ReaderLongstrLengthBeyondEndFails) {
  std::string in = u32be(10) + "abc";
  Reader r(in);
  EXPECT_EQ(r.longstr(), "");
  EXPECT_FALSE(r.ok());
}

TEST(WireTest, ReaderShortstrLengthBeyondEndFails) {
  std::string in = B({5, 'a', 'b'});
  Reader r(in);
  EXPECT_EQ(r.shortstr(), "");
  EXPECT_FALSE(r.ok());
}

TEST(WireTest, ShortstrLongerThan255IsTruncatedTo255) {
  std::string out;
  Writer w(out);
  w.shortstr(std::string(300, 'z'));
  ASSERT_EQ(out.size(), 256u);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 255);
  EXPECT_EQ(out.substr(1), std::string(255, 'z'));
}

TEST(WireTest, PatchU32OverwritesInPlace) {
  std::string out;
  Writer w(out);
  w.u8(9);
  w.u32(0);
  w.u8(7);
  w.patch_u32(1, 0xA1B2C3D4);
  EXPECT_EQ(hex(out), hex(B({9, 0xA1, 0xB2, 0xC3, 0xD4, 7})));
}

// ---------------------------------------------------------------------------------------------
// Hand-written encodings: what RabbitMQ (rabbit_binary_generator) and pika write.

struct KnownEncoding {
  const char* name;
  FieldValue value;
  std::string tag_and_value;
};

std::vector<KnownEncoding> KnownEncodings() {
  return {
      {"bool true", FieldValue(true), B({'t', 1})},
      {"bool false", FieldValue(false), B({'t', 0})},
      {"int8 -2", FieldValue(int8_t(-2)), B({'b', 0xFE})},
      {"uint8 200", FieldValue(uint8_t(200)), B({'B', 0xC8})},
      {"int16 -2", FieldValue(int16_t(-2)), B({'s', 0xFF, 0xFE})},
      {"uint16 0xBEEF", FieldValue(uint16_t(0xBEEF)), B({'u', 0xBE, 0xEF})},
      {"int32 -1", FieldValue(int32_t(-1)), B({'I', 0xFF, 0xFF, 0xFF, 0xFF})},
      {"int32 0x01020304", FieldValue(int32_t(0x01020304)), B({'I', 1, 2, 3, 4})},
      {"uint32 0xFFFFFFFE", FieldValue(uint32_t(0xFFFFFFFE)), B({'i', 0xFF, 0xFF, 0xFF, 0xFE})},
      {"int64 -3", FieldValue(int64_t(-3)),
       B({'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD})},
      {"int64 min", FieldValue(std::numeric_limits<int64_t>::min()),
       B({'l', 0x80, 0, 0, 0, 0, 0, 0, 0})},
      {"float 1.5", FieldValue(1.5f), B({'f', 0x3F, 0xC0, 0, 0})},
      {"double -2.0", FieldValue(-2.0), B({'d', 0xC0, 0, 0, 0, 0, 0, 0, 0})},
      {"decimal 2/12345", FieldValue(Decimal{2, 12345}), B({'D', 2, 0, 0, 0x30, 0x39})},
      {"longstr", FieldValue("hello"), B({'S', 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'})},
      {"empty longstr", FieldValue(""), B({'S', 0, 0, 0, 0})},
      {"bytes", FieldValue(ByteArray{"\x00\xFF"s}), B({'x', 0, 0, 0, 2, 0, 0xFF})},
      {"timestamp", FieldValue(Timestamp{0x5F5E1000}), B({'T', 0, 0, 0, 0, 0x5F, 0x5E, 0x10, 0})},
      {"void", FieldValue(Void{}), B({'V'})},
      // 'A': u32 byte length of the values, then tagged values.
      {"array [I 1, S a]", FieldValue(FieldArray{FieldValue(int32_t(1)), FieldValue("a")}),
       B({'A', 0, 0, 0, 11, 'I', 0, 0, 0, 1, 'S', 0, 0, 0, 1, 'a'})},
      {"empty array", FieldValue(FieldArray{}), B({'A', 0, 0, 0, 0})},
      // 'F': u32 byte length of the entries, then shortstr key + tagged value.
      {"table {k: t true}", FieldValue(FieldTable{{{"k", FieldValue(true)}}}),
       B({'F', 0, 0, 0, 4, 1, 'k', 't', 1})},
      {"empty table", FieldValue(FieldTable{}), B({'F', 0, 0, 0, 0})},
  };
}

TEST(FieldTableTest, KnownEncodingsEncodeExactly) {
  for (const auto& k : KnownEncodings()) {
    FieldTable t;
    t.set("key", k.value);
    EXPECT_EQ(hex(encode_table_body(t)), hex(entry("key", k.tag_and_value))) << k.name;
  }
}

TEST(FieldTableTest, KnownEncodingsDecodeToTheSameValueAndTag) {
  for (const auto& k : KnownEncodings()) {
    auto t = decode_table(entry("key", k.tag_and_value));
    ASSERT_TRUE(t.has_value()) << k.name;
    ASSERT_EQ(t->size(), 1u) << k.name;
    EXPECT_EQ(t->entries[0].first, "key") << k.name;
    EXPECT_EQ(t->entries[0].second.tag(), k.tag_and_value[0]) << k.name;
    EXPECT_TRUE(t->entries[0].second == k.value) << k.name << ": " << to_string(t->entries[0].second);
  }
}

TEST(FieldTableTest, EncodeTableWritesU32LengthThenEntries) {
  // What pika writes for {"x-message-ttl": 60000} (int -> 'I' when it fits) and a string.
  FieldTable t;
  t.set("x-message-ttl", FieldValue(int32_t(60000)));
  t.set("name", FieldValue("q"));
  std::string out;
  Writer w(out);
  encode_table(w, t);
  std::string body = entry("x-message-ttl", B({'I', 0, 0, 0xEA, 0x60})) +
                     entry("name", B({'S', 0, 0, 0, 1, 'q'}));
  EXPECT_EQ(body.size(), 19u + 11u);
  EXPECT_EQ(hex(out), hex(u32be(30) + body));
  EXPECT_EQ(hex(encode_table_body(t)), hex(body));
}

TEST(FieldTableTest, EmptyTable) {
  FieldTable t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(encode_table_body(t), "");
  std::string out;
  Writer w(out);
  encode_table(w, t);
  EXPECT_EQ(hex(out), hex(B({0, 0, 0, 0})));
  auto d = decode_table("");
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->empty());
}

// ---------------------------------------------------------------------------------------------
// Byte-exact round trips.

TEST(FieldTableTest, EveryTypeRoundTripsByteForByte) {
  std::string body;
  body += entry("t1", B({'t', 1}));
  body += entry("t0", B({'t', 0}));
  body += entry("b", B({'b', 0x80}));                       // -128
  body += entry("B", B({'B', 0xFF}));                       // 255
  body += entry("s", B({'s', 0x80, 0x00}));                 // -32768
  body += entry("u", B({'u', 0xFF, 0xFF}));                 // 65535
  body += entry("I", B({'I', 0x80, 0, 0, 0}));              // INT32_MIN
  body += entry("i", B({'i', 0xFF, 0xFF, 0xFF, 0xFF}));     // UINT32_MAX
  body += entry("l", B({'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}));  // -1
  body += entry("f", B({'f', 0x40, 0x49, 0x0F, 0xDB}));    // pi
  body += entry("d", B({'d', 0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18}));  // pi
  body += entry("D", B({'D', 5, 0xFF, 0xFF, 0xFF, 0xFF}));
  body += entry("S", B({'S', 0, 0, 0, 3, 'a', 0, 'b'}));  // embedded NUL
  body += entry("x", B({'x', 0, 0, 0, 3, 0xC3, 0x28, 0xFF}));  // not UTF-8
  body += entry("T", B({'T', 0, 0, 0, 0, 0x65, 0x00, 0x00, 0x01}));
  body += entry("V", B({'V'}));
  body += entry("A", B({'A', 0, 0, 0, 0}));
  body += entry("F", B({'F', 0, 0, 0, 0}));
  body += entry("", B({'V'}));  // empty key is legal
  ExpectRoundTrip(body);

  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->size(), 19u);
  std::string tags;
  for (const auto& [k, v] : t->entries) tags.push_back(v.tag());
  EXPECT_EQ(tags, "ttbBsuIilfdDSxTVAFV");
  EXPECT_EQ(t->find("b")->as_int(), -128);
  EXPECT_EQ(t->find("B")->as_int(), 255);
  EXPECT_EQ(t->find("s")->as_int(), -32768);
  EXPECT_EQ(t->find("u")->as_int(), 65535);
  EXPECT_EQ(t->find("I")->as_int(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(t->find("i")->as_int(), 4294967295LL);
  EXPECT_EQ(t->find("l")->as_int(), -1);
  EXPECT_EQ(std::get<float>(t->find("f")->v), 3.14159274f);
  EXPECT_EQ(std::get<double>(t->find("d")->v), 3.141592653589793);
  EXPECT_EQ(std::get<Decimal>(t->find("D")->v), (Decimal{5, 0xFFFFFFFFu}));
  EXPECT_EQ(*t->find("S")->as_string(), "a\0b"s);
  EXPECT_EQ(std::get<ByteArray>(t->find("x")->v).bytes, "\xC3\x28\xFF"s);
  EXPECT_EQ(std::get<Timestamp>(t->find("T")->v).seconds, 0x65000001u);
  EXPECT_TRUE(std::holds_alternative<Void>(t->find("V")->v));
  EXPECT_TRUE(std::get<FieldArray>(t->find("A")->v).empty());
  ASSERT_NE(t->find("F")->as_table(), nullptr);
  EXPECT_TRUE(t->find("F")->as_table()->empty());
}

TEST(FieldTableTest, NestedTablesAndMixedArraysRoundTrip) {
  // {outer: F{inner: F{n: I 7, arr: A[t 1, S "s", A[], F{}, V, l -5]}}, list: A[F{k: x ""}, d 0.5]}
  std::string inner_arr_items = B({'t', 1}) + B({'S', 0, 0, 0, 1, 's'}) + B({'A', 0, 0, 0, 0}) +
                                B({'F', 0, 0, 0, 0}) + B({'V'}) +
                                B({'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB});
  std::string inner_body = entry("n", B({'I', 0, 0, 0, 7})) +
                           entry("arr", "A" + u32be(uint32_t(inner_arr_items.size())) + inner_arr_items);
  std::string outer_body = entry("inner", "F" + u32be(uint32_t(inner_body.size())) + inner_body);
  std::string list_items = "F" + u32be(7) + entry("k", B({'x', 0, 0, 0, 0})) +
                           B({'d', 0x3F, 0xE0, 0, 0, 0, 0, 0, 0});
  std::string body = entry("outer", "F" + u32be(uint32_t(outer_body.size())) + outer_body) +
                     entry("list", "A" + u32be(uint32_t(list_items.size())) + list_items);
  ExpectRoundTrip(body);

  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  const FieldTable* outer = t->find("outer")->as_table();
  ASSERT_NE(outer, nullptr);
  const FieldTable* inner = outer->find("inner")->as_table();
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->find("n")->as_int(), 7);
  const auto& arr = std::get<FieldArray>(inner->find("arr")->v);
  ASSERT_EQ(arr.size(), 6u);
  std::string tags;
  for (const auto& v : arr) tags.push_back(v.tag());
  EXPECT_EQ(tags, "tSAFVl");
  EXPECT_EQ(arr[5].as_int(), -5);
  const auto& list = std::get<FieldArray>(t->find("list")->v);
  ASSERT_EQ(list.size(), 2u);
  ASSERT_NE(list[0].as_table(), nullptr);
  EXPECT_EQ(list[0].as_table()->find("k")->tag(), 'x');
  EXPECT_EQ(std::get<double>(list[1].v), 0.5);

  // The same structure built in code encodes to the same bytes.
  FieldTable in;
  in.set("n", FieldValue(int32_t(7)));
  in.set("arr", FieldValue(FieldArray{FieldValue(true), FieldValue("s"), FieldValue(FieldArray{}),
                                      FieldValue(FieldTable{}), FieldValue(Void{}),
                                      FieldValue(int64_t(-5))}));
  FieldTable out_t;
  out_t.set("inner", FieldValue(in));
  FieldTable top;
  top.set("outer", FieldValue(out_t));
  FieldTable k;
  k.set("k", FieldValue(ByteArray{}));
  top.set("list", FieldValue(FieldArray{FieldValue(k), FieldValue(0.5)}));
  EXPECT_EQ(hex(encode_table_body(top)), hex(body));
  EXPECT_TRUE(top == *t);
}

TEST(FieldTableTest, FloatAndDoubleBitPatternsSurvive) {
  const uint32_t fbits[] = {0x7FC00001u /* quiet NaN with payload */, 0xFFA00000u /* -sNaN */,
                            0x80000000u /* -0.0f */, 0x7F800000u /* +inf */,
                            0x00000001u /* denormal */};
  const uint64_t dbits[] = {0x7FF8000000000001ULL, 0xFFF4000000000000ULL, 0x8000000000000000ULL,
                            0xFFF0000000000000ULL, 0x0000000000000001ULL};
  std::string body;
  for (uint32_t b : fbits) body += entry("f", "f" + u32be(b));
  for (uint64_t b : dbits) body += entry("d", "d" + u32be(uint32_t(b >> 32)) + u32be(uint32_t(b)));
  ExpectRoundTrip(body);

  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->size(), 10u);
  for (int i = 0; i < 5; ++i) {
    uint32_t got;
    float f = std::get<float>(t->entries[i].second.v);
    std::memcpy(&got, &f, 4);
    EXPECT_EQ(got, fbits[i]) << i;
    uint64_t dgot;
    double d = std::get<double>(t->entries[5 + i].second.v);
    std::memcpy(&dgot, &d, 8);
    EXPECT_EQ(dgot, dbits[i]) << i;
  }
  // Built in code: -0.0 keeps its sign bit and NaN its payload.
  FieldTable c;
  c.set("nz", FieldValue(-0.0));
  c.set("nzf", FieldValue(-0.0f));
  c.set("nan", FieldValue(DoubleFromBits(0x7FF8000000000001ULL)));
  c.set("nanf", FieldValue(FloatFromBits(0x7FC00001u)));
  EXPECT_EQ(hex(encode_table_body(c)),
            hex(entry("nz", B({'d', 0x80, 0, 0, 0, 0, 0, 0, 0})) +
                entry("nzf", B({'f', 0x80, 0, 0, 0})) +
                entry("nan", B({'d', 0x7F, 0xF8, 0, 0, 0, 0, 0, 1})) +
                entry("nanf", B({'f', 0x7F, 0xC0, 0, 1}))));
}

TEST(FieldTableTest, EqualityIsBitwiseForFloats) {
  // NaN equals itself (same bits); 0.0 and -0.0 differ; types differ even with equal numbers.
  FieldValue nan1(DoubleFromBits(0x7FF8000000000001ULL));
  FieldValue nan2(DoubleFromBits(0x7FF8000000000001ULL));
  FieldValue nan3(DoubleFromBits(0x7FF8000000000002ULL));
  EXPECT_TRUE(nan1 == nan2);
  EXPECT_FALSE(nan1 == nan3);
  EXPECT_FALSE(FieldValue(0.0) == FieldValue(-0.0));
  EXPECT_FALSE(FieldValue(0.0f) == FieldValue(-0.0f));
  EXPECT_FALSE(FieldValue(int32_t(1)) == FieldValue(int64_t(1)));
  EXPECT_FALSE(FieldValue("ab") == FieldValue(ByteArray{"ab"}));
  EXPECT_TRUE(FieldValue(FieldTable{{{"a", FieldValue(1)}}}) ==
              FieldValue(FieldTable{{{"a", FieldValue(1)}}}));
  EXPECT_FALSE(FieldValue(FieldTable{{{"a", FieldValue(1)}}}) ==
               FieldValue(FieldTable{{{"a", FieldValue(2)}}}));
}

TEST(FieldTableTest, ByteArrayAndLongStringKeepTheirTag) {
  std::string body = entry("s", B({'S', 0, 0, 0, 2, 'h', 'i'})) +
                     entry("x", B({'x', 0, 0, 0, 2, 'h', 'i'}));
  ExpectRoundTrip(body);
  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->find("s")->tag(), 'S');
  EXPECT_EQ(t->find("x")->tag(), 'x');
  EXPECT_TRUE(std::holds_alternative<std::string>(t->find("s")->v));
  EXPECT_TRUE(std::holds_alternative<ByteArray>(t->find("x")->v));
  EXPECT_EQ(t->find("s")->as_string(), "hi");
  EXPECT_EQ(t->find("x")->as_string(), "hi");
}

TEST(FieldTableTest, DuplicateKeysAndOrderArePreservedOnDecode) {
  std::string body = entry("b", B({'I', 0, 0, 0, 2})) + entry("a", B({'I', 0, 0, 0, 1})) +
                     entry("b", B({'I', 0, 0, 0, 3}));
  ExpectRoundTrip(body);
  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ(t->entries[0].first, "b");
  EXPECT_EQ(t->entries[1].first, "a");
  EXPECT_EQ(t->entries[2].first, "b");
  EXPECT_EQ(t->find("b")->as_int(), 2);  // find returns the first
}

TEST(FieldTableTest, LargeValuesRoundTrip) {
  std::string big(70000, '\x5A');
  std::string body = entry(std::string(255, 'k'), "S" + u32be(70000) + big) +
                     entry("x", "x" + u32be(70000) + big);
  ExpectRoundTrip(body);
}

TEST(FieldTableTest, ModerateNestingDepthIsAccepted) {
  // 40 nested tables: {k: {k: {... {} ...}}} - well within any sane limit.
  constexpr int kDepth = 40;
  std::string body;
  for (int d = 0; d < kDepth; ++d) body += "\x01kF" + u32be(uint32_t(7 * (kDepth - d - 1)));
  ASSERT_EQ(body.size(), size_t(7 * kDepth));
  ExpectRoundTrip(body);
  auto t = decode_table(body);
  ASSERT_TRUE(t.has_value());
  int depth = 0;
  const FieldTable* cur = &*t;
  while (!cur->empty()) {
    cur = cur->find("k")->as_table();
    ASSERT_NE(cur, nullptr);
    ++depth;
  }
  EXPECT_EQ(depth, kDepth);
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

TEST(FieldTableTest, TruncatedValuesAreRejected) {
  // With a single entry every strict non-empty prefix is malformed (no entry boundary inside).
  for (const auto& k : KnownEncodings()) {
    std::string body = entry("key", k.tag_and_value);
    for (size_t n = 1; n < body.size(); ++n) {
      EXPECT_FALSE(decode_table(body.substr(0, n)).has_value())
          << k.name << " prefix " << n << " of " << body.size();
    }
  }
}

TEST(FieldTableTest, KeyWithoutValueIsRejected) {
  EXPECT_FALSE(decode_table(B({3, 'k', 'e', 'y'})).has_value());
  EXPECT_FALSE(decode_table(B({3, 'k', 'e'})).has_value());  // key itself truncated
}

TEST(FieldTableTest, UnknownTagsAreRejected) {
  for (int tag : std::initializer_list<int>{0, 'Z', 'q', 'U', 'N', 'c', 'o', 0xFF}) {
    std::string body = entry("k", B({tag, 0, 0, 0, 0, 0, 0, 0, 0}));
    EXPECT_FALSE(decode_table(body).has_value()) << "tag " << tag;
  }
  // Unknown tag inside an array and a nested table.
  EXPECT_FALSE(decode_table(entry("k", B({'A', 0, 0, 0, 2, 'Z', 0}))).has_value());
  EXPECT_FALSE(decode_table(entry("k", B({'F', 0, 0, 0, 4, 1, 'a', 'Z', 0}))).has_value());
}

TEST(FieldTableTest, LengthsBeyondTheEndAreRejected) {
  EXPECT_FALSE(decode_table(entry("k", B({'S', 0, 0, 0, 9, 'a', 'b'}))).has_value());
  EXPECT_FALSE(decode_table(entry("k", B({'S', 0xFF, 0xFF, 0xFF, 0xFF, 'a'}))).has_value());
  EXPECT_FALSE(decode_table(entry("k", B({'x', 0x80, 0, 0, 0}))).has_value());
  EXPECT_FALSE(decode_table(entry("k", B({'A', 0, 0, 0, 6, 'I', 0, 0, 0, 1}))).has_value());
  EXPECT_FALSE(decode_table(entry("k", B({'F', 0, 0, 1, 0}))).has_value());
  EXPECT_FALSE(decode_table(B({200, 'k'})).has_value());  // key length
}

TEST(FieldTableTest, ArrayOrTableLengthCutsAValueInHalf) {
  // The declared array length ends in the middle of an 'I' value (the rest follows outside).
  std::string body = entry("k", B({'A', 0, 0, 0, 3, 'I', 0, 0, 0, 1}));
  EXPECT_FALSE(decode_table(body).has_value());
  // The nested table's declared length ends in the middle of its entry's value.
  body = entry("k", B({'F', 0, 0, 0, 4, 1, 'a', 'I', 0, 0, 0, 1}));
  EXPECT_FALSE(decode_table(body).has_value());
}

TEST(FieldTableTest, DeepTableNestingBombIsRejectedWithoutCrashing) {
  // 10000 levels of {k: {k: ...}}: must be rejected (or at least not overflow the stack).
  constexpr int kDepth = 10000;
  std::string body;
  body.reserve(7 * kDepth);
  for (int d = 0; d < kDepth; ++d) body += "\x01kF" + u32be(uint32_t(7 * (kDepth - d - 1)));
  EXPECT_FALSE(decode_table(body).has_value());
}

TEST(FieldTableTest, DeepArrayNestingBombIsRejectedWithoutCrashing) {
  // {k: A[A[A[...]]]} 10000 levels deep.
  constexpr int kDepth = 10000;
  std::string body = "\x01kA" + u32be(uint32_t(5 * (kDepth - 1)));
  for (int d = 1; d < kDepth; ++d) body += "A" + u32be(uint32_t(5 * (kDepth - d - 1)));
  EXPECT_FALSE(decode_table(body).has_value());
}

TEST(FieldTableTest, DeepMixedNestingBombIsRejectedWithoutCrashing) {
  // Alternating table/array levels: {k: A[F{k: A[F{...}]}]}.
  constexpr int kPairs = 5000;
  // Each pair: entry "\x01kA" + len (7 bytes) then item "F" + len (5 bytes) = 12 bytes.
  std::string body;
  body.reserve(12 * kPairs);
  for (int d = 0; d < kPairs; ++d) {
    uint32_t rest = uint32_t(12 * (kPairs - d - 1));
    body += "\x01kA" + u32be(rest + 5);
    body += "F" + u32be(rest);
  }
  EXPECT_FALSE(decode_table(body).has_value());
}

TEST(FieldTableTest, ReadRawTableReturnsTheBodyWithoutDecoding) {
  std::string in = u32be(3) + "abc" + "rest";
  Reader r(in);
  EXPECT_EQ(read_raw_table(r), "abc");
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 4u);
  std::string bad = u32be(10) + "abc";
  Reader r2(bad);
  read_raw_table(r2);
  EXPECT_FALSE(r2.ok());
}

// ---------------------------------------------------------------------------------------------
// API: find / set / tags / typed views / rendering.

TEST(FieldTableTest, FindAndSet) {
  FieldTable t;
  EXPECT_EQ(t.find("a"), nullptr);
  t.set("a", FieldValue(int32_t(1)));
  t.set("b", FieldValue("x"));
  t.set("a", FieldValue(int64_t(2)));  // replaces in place, keeps position
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.entries[0].first, "a");
  EXPECT_EQ(t.entries[0].second.tag(), 'l');
  EXPECT_EQ(t.find("a")->as_int(), 2);
  EXPECT_EQ(t.find("b")->as_string(), "x");
  EXPECT_EQ(t.find("c"), nullptr);
  EXPECT_EQ(t.find("A"), nullptr);  // case-sensitive
}

TEST(FieldTableTest, TagsOfConstructedValues) {
  EXPECT_EQ(FieldValue().tag(), 'V');
  EXPECT_EQ(FieldValue(true).tag(), 't');
  EXPECT_EQ(FieldValue(int8_t(1)).tag(), 'b');
  EXPECT_EQ(FieldValue(uint8_t(1)).tag(), 'B');
  EXPECT_EQ(FieldValue(int16_t(1)).tag(), 's');
  EXPECT_EQ(FieldValue(uint16_t(1)).tag(), 'u');
  EXPECT_EQ(FieldValue(int32_t(1)).tag(), 'I');
  EXPECT_EQ(FieldValue(uint32_t(1)).tag(), 'i');
  EXPECT_EQ(FieldValue(int64_t(1)).tag(), 'l');
  EXPECT_EQ(FieldValue(1.0f).tag(), 'f');
  EXPECT_EQ(FieldValue(1.0).tag(), 'd');
  EXPECT_EQ(FieldValue(Decimal{}).tag(), 'D');
  EXPECT_EQ(FieldValue("s").tag(), 'S');
  EXPECT_EQ(FieldValue(std::string("s")).tag(), 'S');
  EXPECT_EQ(FieldValue(std::string_view("s")).tag(), 'S');
  EXPECT_EQ(FieldValue(FieldArray{}).tag(), 'A');
  EXPECT_EQ(FieldValue(Timestamp{}).tag(), 'T');
  EXPECT_EQ(FieldValue(FieldTable{}).tag(), 'F');
  EXPECT_EQ(FieldValue(Void{}).tag(), 'V');
  EXPECT_EQ(FieldValue(ByteArray{}).tag(), 'x');
}

TEST(FieldTableTest, TypedViews) {
  EXPECT_EQ(FieldValue(int8_t(-7)).as_int(), -7);
  EXPECT_EQ(FieldValue(uint8_t(250)).as_int(), 250);
  EXPECT_EQ(FieldValue(int16_t(-300)).as_int(), -300);
  EXPECT_EQ(FieldValue(uint16_t(60000)).as_int(), 60000);
  EXPECT_EQ(FieldValue(int32_t(-70000)).as_int(), -70000);
  EXPECT_EQ(FieldValue(uint32_t(4000000000u)).as_int(), 4000000000LL);
  EXPECT_EQ(FieldValue(int64_t(-5000000000LL)).as_int(), -5000000000LL);
  EXPECT_EQ(FieldValue(true).as_int(), std::nullopt);
  EXPECT_EQ(FieldValue(1.0).as_int(), std::nullopt);
  EXPECT_EQ(FieldValue("1").as_int(), std::nullopt);
  EXPECT_EQ(FieldValue(Timestamp{1}).as_int(), std::nullopt);
  EXPECT_EQ(FieldValue(Decimal{0, 1}).as_int(), std::nullopt);

  EXPECT_EQ(FieldValue("abc").as_string(), "abc");
  EXPECT_EQ(FieldValue(ByteArray{"abc"}).as_string(), "abc");
  EXPECT_EQ(FieldValue(int32_t(1)).as_string(), std::nullopt);
  EXPECT_EQ(FieldValue(Void{}).as_string(), std::nullopt);

  EXPECT_EQ(FieldValue(true).as_bool(), true);
  EXPECT_EQ(FieldValue(false).as_bool(), false);
  EXPECT_EQ(FieldValue(int32_t(1)).as_bool(), std::nullopt);
  EXPECT_EQ(FieldValue("true").as_bool(), std::nullopt);

  FieldValue tv(FieldTable{{{"a", FieldValue(1)}}});
  ASSERT_NE(tv.as_table(), nullptr);
  EXPECT_EQ(tv.as_table()->find("a")->as_int(), 1);
  EXPECT_EQ(FieldValue(FieldArray{}).as_table(), nullptr);
  EXPECT_EQ(FieldValue("x").as_table(), nullptr);
}

TEST(FieldTableTest, ToString) {
  FieldTable t;
  t.set("i", FieldValue(int32_t(-1)));
  t.set("s", FieldValue("x"));
  t.set("b", FieldValue(true));
  t.set("v", FieldValue(Void{}));
  t.set("a", FieldValue(FieldArray{FieldValue(uint8_t(1)), FieldValue(false)}));
  t.set("x", FieldValue(ByteArray{"abc"}));
  t.set("D", FieldValue(Decimal{2, 314}));
  t.set("T", FieldValue(Timestamp{1700000000}));
  t.set("F", FieldValue(FieldTable{{{"n", FieldValue(int64_t(9))}}}));
  EXPECT_EQ(to_string(t),
            "{i:-1,s:\"x\",b:true,v:void,a:[1,false],x:<<3 bytes>>,D:314e-2,T:1700000000,"
            "F:{n:9}}");
  EXPECT_EQ(to_string(FieldTable{}), "{}");
  EXPECT_EQ(to_string(FieldValue(FieldArray{})), "[]");
  EXPECT_EQ(to_string(FieldValue(1.5)), "1.500000");
}

}  // namespace
}  // namespace warren::amqp
