// Headers-exchange matching with RabbitMQ's semantics (rabbit_exchange_type_headers): x-match
// all (default) / any / all-with-x / any-with-x, "x-" binding keys ignored unless *-with-x, a void
// binding value asks for presence only, values compared like Erlang == (numbers by value whatever
// their width, strings by bytes).
#include <gtest/gtest.h>

#include <string>

#include "amqp/field_table.h"
#include "broker/headers_matcher.h"

namespace warren::broker {
namespace {

using amqp::ByteArray;
using amqp::Decimal;
using amqp::FieldArray;
using amqp::FieldTable;
using amqp::FieldValue;
using amqp::Timestamp;
using amqp::Void;

FieldTable T(std::initializer_list<std::pair<std::string, FieldValue>> entries) {
  FieldTable t;
  for (const auto& [k, v] : entries) t.entries.emplace_back(k, v);
  return t;
}

HeadersPattern Parse(const FieldTable& args) {
  HeadersPattern p;
  std::string err;
  EXPECT_TRUE(HeadersPattern::parse(args, &p, &err)) << err;
  EXPECT_EQ(err, "");
  return p;
}

bool Match(const FieldTable& args, const FieldTable& headers) { return Parse(args).matches(headers); }

TEST(HeadersMatcherTest, DefaultIsAll) {
  FieldTable args = T({{"format", "pdf"}, {"type", "report"}});
  EXPECT_TRUE(Match(args, T({{"format", "pdf"}, {"type", "report"}})));
  EXPECT_TRUE(Match(args, T({{"type", "report"}, {"format", "pdf"}, {"extra", int32_t(1)}})));
  EXPECT_FALSE(Match(args, T({{"format", "pdf"}})));
  EXPECT_FALSE(Match(args, T({{"format", "pdf"}, {"type", "log"}})));
  EXPECT_FALSE(Match(args, T({})));
}

TEST(HeadersMatcherTest, ExplicitAll) {
  FieldTable args = T({{"x-match", "all"}, {"format", "pdf"}, {"type", "report"}});
  EXPECT_TRUE(Match(args, T({{"format", "pdf"}, {"type", "report"}})));
  EXPECT_FALSE(Match(args, T({{"format", "pdf"}, {"type", "log"}})));
  EXPECT_FALSE(Match(args, T({{"type", "report"}})));
}

TEST(HeadersMatcherTest, Any) {
  FieldTable args = T({{"x-match", "any"}, {"format", "pdf"}, {"type", "report"}});
  EXPECT_TRUE(Match(args, T({{"format", "pdf"}})));
  EXPECT_TRUE(Match(args, T({{"type", "report"}})));
  EXPECT_TRUE(Match(args, T({{"format", "zip"}, {"type", "report"}})));
  EXPECT_TRUE(Match(args, T({{"format", "pdf"}, {"type", "report"}})));
  EXPECT_FALSE(Match(args, T({{"format", "zip"}, {"type", "log"}})));
  EXPECT_FALSE(Match(args, T({{"other", "pdf"}})));
  EXPECT_FALSE(Match(args, T({})));
}

TEST(HeadersMatcherTest, EmptyBindingArguments) {
  // all with nothing to compare matches everything; any matches nothing.
  EXPECT_TRUE(Match(T({}), T({})));
  EXPECT_TRUE(Match(T({}), T({{"a", int32_t(1)}})));
  EXPECT_TRUE(Match(T({{"x-match", "all"}}), T({})));
  EXPECT_TRUE(Match(T({{"x-match", "all"}}), T({{"a", int32_t(1)}})));
  EXPECT_FALSE(Match(T({{"x-match", "any"}}), T({})));
  EXPECT_FALSE(Match(T({{"x-match", "any"}}), T({{"a", int32_t(1)}})));
  EXPECT_TRUE(Match(T({{"x-match", "all-with-x"}}), T({{"a", int32_t(1)}})));
  EXPECT_FALSE(Match(T({{"x-match", "any-with-x"}}), T({{"a", int32_t(1)}})));
}

TEST(HeadersMatcherTest, XKeysAreIgnoredInAllAndAny) {
  // Binding-side x- keys are not compared.
  FieldTable all = T({{"x-match", "all"}, {"x-foo", "bar"}, {"a", int32_t(1)}});
  EXPECT_TRUE(Match(all, T({{"a", int32_t(1)}})));
  EXPECT_TRUE(Match(all, T({{"a", int32_t(1)}, {"x-foo", "other"}})));
  FieldTable only_x = T({{"x-foo", "bar"}});
  EXPECT_TRUE(Match(only_x, T({})));  // all, nothing left to compare
  FieldTable any = T({{"x-match", "any"}, {"x-foo", "bar"}, {"a", int32_t(1)}});
  EXPECT_FALSE(Match(any, T({{"x-foo", "bar"}})));
  EXPECT_TRUE(Match(any, T({{"a", int32_t(1)}})));
  FieldTable any_only_x = T({{"x-match", "any"}, {"x-foo", "bar"}});
  EXPECT_FALSE(Match(any_only_x, T({{"x-foo", "bar"}})));
}

TEST(HeadersMatcherTest, XKeysAreComparedInWithXModes) {
  FieldTable all_x = T({{"x-match", "all-with-x"}, {"x-foo", "bar"}, {"a", int32_t(1)}});
  EXPECT_TRUE(Match(all_x, T({{"a", int32_t(1)}, {"x-foo", "bar"}})));
  EXPECT_FALSE(Match(all_x, T({{"a", int32_t(1)}})));
  EXPECT_FALSE(Match(all_x, T({{"a", int32_t(1)}, {"x-foo", "baz"}})));
  FieldTable any_x = T({{"x-match", "any-with-x"}, {"x-foo", "bar"}, {"a", int32_t(1)}});
  EXPECT_TRUE(Match(any_x, T({{"x-foo", "bar"}})));
  EXPECT_TRUE(Match(any_x, T({{"a", int32_t(1)}})));
  EXPECT_FALSE(Match(any_x, T({{"x-foo", "baz"}, {"a", int32_t(2)}})));
  FieldTable any_x_only = T({{"x-match", "any-with-x"}, {"x-foo", "bar"}});
  EXPECT_TRUE(Match(any_x_only, T({{"x-foo", "bar"}})));
}

TEST(HeadersMatcherTest, XMatchItselfIsNeverCompared) {
  // RabbitMQ always drops the binding's x-match, even in the *-with-x modes.
  EXPECT_TRUE(Match(T({{"x-match", "all-with-x"}, {"a", int32_t(1)}}), T({{"a", int32_t(1)}})));
  EXPECT_TRUE(Match(T({{"x-match", "all-with-x"}}), T({{"x-match", "other"}})));
  EXPECT_FALSE(Match(T({{"x-match", "any-with-x"}}), T({{"x-match", "any-with-x"}})));
}

TEST(HeadersMatcherTest, VoidBindingValueMeansPresence) {
  FieldTable args = T({{"a", FieldValue(Void{})}});
  EXPECT_TRUE(Match(args, T({{"a", int32_t(1)}})));
  EXPECT_TRUE(Match(args, T({{"a", "anything"}})));
  EXPECT_TRUE(Match(args, T({{"a", FieldValue(Void{})}})));
  EXPECT_TRUE(Match(args, T({{"a", false}})));
  EXPECT_FALSE(Match(args, T({{"b", int32_t(1)}})));
  EXPECT_FALSE(Match(args, T({})));
  FieldTable any = T({{"x-match", "any"}, {"a", FieldValue(Void{})}, {"b", "v"}});
  EXPECT_TRUE(Match(any, T({{"a", int32_t(0)}})));
  EXPECT_TRUE(Match(any, T({{"b", "v"}})));
  EXPECT_FALSE(Match(any, T({{"b", "w"}})));
}

TEST(HeadersMatcherTest, VoidHeaderDoesNotEqualAValue) {
  EXPECT_FALSE(Match(T({{"a", "v"}}), T({{"a", FieldValue(Void{})}})));
  EXPECT_FALSE(Match(T({{"a", int32_t(0)}}), T({{"a", FieldValue(Void{})}})));
}

TEST(HeadersMatcherTest, IntegersCompareByValueAcrossWidths) {
  EXPECT_TRUE(Match(T({{"n", int32_t(1)}}), T({{"n", int64_t(1)}})));   // 'I' vs 'l'
  EXPECT_TRUE(Match(T({{"n", int64_t(1)}}), T({{"n", int32_t(1)}})));
  EXPECT_TRUE(Match(T({{"n", int8_t(5)}}), T({{"n", uint16_t(5)}})));   // 'b' vs 'u'
  EXPECT_TRUE(Match(T({{"n", uint8_t(200)}}), T({{"n", int16_t(200)}})));
  EXPECT_TRUE(Match(T({{"n", uint32_t(4000000000u)}}), T({{"n", int64_t(4000000000LL)}})));
  EXPECT_TRUE(Match(T({{"n", int16_t(-3)}}), T({{"n", int64_t(-3)}})));
  // Same bits, different signedness: different numbers.
  EXPECT_FALSE(Match(T({{"n", uint8_t(255)}}), T({{"n", int8_t(-1)}})));
  EXPECT_FALSE(Match(T({{"n", uint32_t(0xFFFFFFFFu)}}), T({{"n", int32_t(-1)}})));
  EXPECT_FALSE(Match(T({{"n", int32_t(1)}}), T({{"n", int64_t(2)}})));
}

TEST(HeadersMatcherTest, IntegersAndFloatsCompareByValue) {
  // Erlang: 1 == 1.0 is true.
  EXPECT_TRUE(Match(T({{"n", int32_t(2)}}), T({{"n", 2.0}})));
  EXPECT_TRUE(Match(T({{"n", 2.0}}), T({{"n", int64_t(2)}})));
  EXPECT_TRUE(Match(T({{"n", 1.5f}}), T({{"n", 1.5}})));
  EXPECT_FALSE(Match(T({{"n", int32_t(2)}}), T({{"n", 2.5}})));
  EXPECT_FALSE(Match(T({{"n", 0.1f}}), T({{"n", 0.1}})));  // float 0.1 != double 0.1
}

TEST(HeadersMatcherTest, NumbersDoNotEqualBooleansOrStrings) {
  EXPECT_FALSE(Match(T({{"n", int32_t(1)}}), T({{"n", true}})));
  EXPECT_FALSE(Match(T({{"n", true}}), T({{"n", int32_t(1)}})));
  EXPECT_FALSE(Match(T({{"n", int32_t(1)}}), T({{"n", "1"}})));
  EXPECT_TRUE(Match(T({{"b", true}}), T({{"b", true}})));
  EXPECT_FALSE(Match(T({{"b", true}}), T({{"b", false}})));
}

TEST(HeadersMatcherTest, StringsAndByteArraysCompareByBytes) {
  EXPECT_TRUE(Match(T({{"s", "abc"}}), T({{"s", FieldValue(ByteArray{"abc"})}})));
  EXPECT_TRUE(Match(T({{"s", FieldValue(ByteArray{"abc"})}}), T({{"s", "abc"}})));
  EXPECT_FALSE(Match(T({{"s", "abc"}}), T({{"s", FieldValue(ByteArray{"abd"})}})));
  EXPECT_FALSE(Match(T({{"s", "abc"}}), T({{"s", "ABC"}})));
  EXPECT_FALSE(Match(T({{"s", "abc"}}), T({{"s", "abc "}})));
  EXPECT_TRUE(Match(T({{"s", std::string("a\0b", 3)}}), T({{"s", std::string("a\0b", 3)}})));
  EXPECT_FALSE(Match(T({{"s", std::string("a\0b", 3)}}), T({{"s", "a"}})));
  EXPECT_TRUE(Match(T({{"s", ""}}), T({{"s", ""}})));
}

TEST(HeadersMatcherTest, CompositeValuesCompareExactly) {
  FieldTable nested = T({{"k", int32_t(1)}});
  EXPECT_TRUE(Match(T({{"t", FieldValue(nested)}}), T({{"t", FieldValue(nested)}})));
  EXPECT_FALSE(Match(T({{"t", FieldValue(nested)}}), T({{"t", FieldValue(T({{"k", int32_t(2)}}))}})));
  FieldArray arr = {FieldValue(int32_t(1)), FieldValue("x")};
  EXPECT_TRUE(Match(T({{"a", FieldValue(arr)}}), T({{"a", FieldValue(arr)}})));
  EXPECT_FALSE(Match(T({{"a", FieldValue(arr)}}), T({{"a", FieldValue(FieldArray{})}})));
  EXPECT_TRUE(Match(T({{"d", FieldValue(Decimal{2, 100})}}), T({{"d", FieldValue(Decimal{2, 100})}})));
  EXPECT_FALSE(Match(T({{"d", FieldValue(Decimal{2, 100})}}), T({{"d", FieldValue(Decimal{1, 100})}})));
  EXPECT_TRUE(Match(T({{"ts", FieldValue(Timestamp{5})}}), T({{"ts", FieldValue(Timestamp{5})}})));
  EXPECT_FALSE(Match(T({{"ts", FieldValue(Timestamp{5})}}), T({{"ts", FieldValue(Timestamp{6})}})));
}

TEST(HeadersMatcherTest, HeaderValuesEqualDirectly) {
  EXPECT_TRUE(header_values_equal(FieldValue(int32_t(7)), FieldValue(int64_t(7))));
  EXPECT_TRUE(header_values_equal(FieldValue("x"), FieldValue(ByteArray{"x"})));
  EXPECT_FALSE(header_values_equal(FieldValue(int32_t(7)), FieldValue("7")));
  EXPECT_TRUE(header_values_equal(FieldValue(Void{}), FieldValue(Void{})));
  EXPECT_FALSE(header_values_equal(FieldValue(Void{}), FieldValue(false)));
}

TEST(HeadersMatcherTest, InvalidXMatchIsRejectedWithAnErrorText) {
  for (const char* bad : {"foo", "ALL", "Any", "", "all ", "all-with-X"}) {
    HeadersPattern p;
    std::string err;
    EXPECT_FALSE(HeadersPattern::parse(T({{"x-match", bad}, {"a", int32_t(1)}}), &p, &err)) << bad;
    EXPECT_EQ(err, "Invalid x-match field value \"" + std::string(bad) +
                       "\"; expected all, any, all-with-x, or any-with-x");
  }
  HeadersPattern p;
  std::string err;
  EXPECT_FALSE(HeadersPattern::parse(T({{"x-match", int32_t(1)}}), &p, &err));
  EXPECT_NE(err.find("Invalid x-match"), std::string::npos) << err;
  err.clear();
  EXPECT_FALSE(HeadersPattern::parse(T({{"x-match", true}}), &p, &err));
  EXPECT_NE(err.find("Invalid x-match"), std::string::npos) << err;
}

TEST(HeadersMatcherTest, XMatchMustBeALongString) {
  // rabbit_exchange_type_headers:validate_binding only accepts {longstr, ...}; a byte array 'x'
  // "any" is "Invalid x-match field type".
  HeadersPattern p;
  std::string err;
  EXPECT_FALSE(HeadersPattern::parse(T({{"x-match", FieldValue(ByteArray{"any"})}}), &p, &err));
  EXPECT_NE(err.find("Invalid x-match"), std::string::npos) << err;
}

TEST(HeadersMatcherTest, ParseResetsAReusedPattern) {
  HeadersPattern p;
  std::string err;
  ASSERT_TRUE(HeadersPattern::parse(T({{"x-match", "any"}, {"a", int32_t(1)}}), &p, &err));
  EXPECT_TRUE(p.matches(T({{"a", int32_t(1)}})));
  ASSERT_TRUE(HeadersPattern::parse(T({{"b", int32_t(2)}}), &p, &err));  // all, only b
  EXPECT_FALSE(p.matches(T({{"a", int32_t(1)}})));
  EXPECT_TRUE(p.matches(T({{"b", int32_t(2)}})));
}

TEST(HeadersMatcherTest, LargerAllAndAny) {
  FieldTable all = T({{"a", int32_t(1)}, {"b", "two"}, {"c", FieldValue(Void{})}, {"d", 4.0}});
  FieldTable full = T({{"d", int64_t(4)}, {"c", "z"}, {"b", FieldValue(ByteArray{"two"})},
                       {"a", uint8_t(1)}, {"e", "extra"}});
  EXPECT_TRUE(Match(all, full));
  FieldTable missing_c = T({{"d", int64_t(4)}, {"b", "two"}, {"a", int32_t(1)}});
  EXPECT_FALSE(Match(all, missing_c));
  FieldTable any = all;
  any.entries.insert(any.entries.begin(), {"x-match", FieldValue("any")});
  EXPECT_TRUE(Match(any, missing_c));
  EXPECT_TRUE(Match(any, T({{"c", FieldValue(Void{})}})));
  EXPECT_FALSE(Match(any, T({{"a", int32_t(2)}, {"b", "three"}, {"d", 5.0}})));
}

}  // namespace
}  // namespace warren::broker
