// Headers-exchange matching with RabbitMQ's semantics (rabbit_exchange_type_headers): x-match
// all (default) / any / all-with-x / any-with-x, "x-" binding keys ignored unless *-with-x, a void
// binding value asks for presence only, values compared like Erlang == (numbers by value whatever
// their width, strings by bytes).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/field_table.h"
#include "broker/headers_matcher.h"
#include "matching_cases.h"

namespace warren::broker {
namespace {


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

// Every case of the table shared with the integration tests (tests/data/headers_cases.json:
// all/any/all-with-x/any-with-x, x- keys, void values, numbers across widths and float/int,
// strings vs byte arrays, composite values, ...).
TEST(HeadersMatcherTest, SharedCaseTable) {
  std::vector<testdata::HeadersCase> cases;
  ASSERT_NO_THROW(cases = testdata::LoadHeadersCases());
  ASSERT_FALSE(cases.empty()) << "no cases in " << testdata::DataDir();
  for (const auto& c : cases) {
    HeadersPattern p = Parse(c.binding);
    EXPECT_FALSE(c.match.empty() && c.no_match.empty()) << c.name;
    for (size_t i = 0; i < c.match.size(); ++i)
      EXPECT_TRUE(p.matches(c.match[i])) << c.name << ": match[" << i << "] "
                                         << to_string(c.match[i]);
    for (size_t i = 0; i < c.no_match.size(); ++i)
      EXPECT_FALSE(p.matches(c.no_match[i])) << c.name << ": no_match[" << i << "] "
                                             << to_string(c.no_match[i]);
  }
}

const testdata::HeadersCase* FindCase(const std::vector<testdata::HeadersCase>& cases,
                                      const std::string& name) {
  for (const auto& c : cases)
    if (c.name == name) return &c;
  ADD_FAILURE() << "no case '" << name << "' in headers_cases.json";
  return nullptr;
}

char Tag(const FieldTable& t, const std::string& key) {
  const FieldValue* v = t.find(key);
  EXPECT_NE(v, nullptr) << key << " in " << to_string(t);
  return v ? v->tag() : '?';
}

// The table's cases are only as good as its loader: typed values must keep their AMQP types (a
// loader that turned every number into an int32 would make the width cases prove nothing).
TEST(HeadersMatcherTest, SharedCaseTableKeepsValueTypes) {
  std::vector<testdata::HeadersCase> cases;
  ASSERT_NO_THROW(cases = testdata::LoadHeadersCases());
  struct Expect {
    const char* name;
    const char* key;
    char binding_tag, header_tag;  // of match[0], else no_match[0]
  } expects[] = {
      {"int32-equals-int64", "n", 'I', 'l'},
      {"int8-equals-uint16", "n", 'b', 'u'},
      {"uint8-equals-int16", "n", 'B', 's'},
      {"uint32-equals-int64", "n", 'i', 'l'},
      {"float-0.1-is-not-double-0.1", "n", 'f', 'd'},
      {"byte-array-equals-string", "s", 'x', 'S'},
      {"nested-tables-compare-exactly", "t", 'F', 'F'},
      {"arrays-compare-exactly", "a", 'A', 'A'},
      {"decimals-compare-exactly", "d", 'D', 'D'},
      {"timestamps-compare-exactly", "ts", 'T', 'T'},
      {"void-binding-value-means-presence", "a", 'V', 'I'},
      {"booleans", "b", 't', 't'},
  };
  for (const auto& e : expects) {
    const testdata::HeadersCase* c = FindCase(cases, e.name);
    if (!c) continue;
    EXPECT_EQ(Tag(c->binding, e.key), e.binding_tag) << e.name;
    const auto& headers = c->match.empty() ? c->no_match : c->match;
    ASSERT_FALSE(headers.empty()) << e.name;
    EXPECT_EQ(Tag(headers[0], e.key), e.header_tag) << e.name;
  }
  const testdata::HeadersCase* nul = FindCase(cases, "strings-with-nul-bytes");
  ASSERT_NE(nul, nullptr);
  EXPECT_EQ(nul->binding.find("s")->as_string(), std::string_view("a\0b", 3));
  const testdata::HeadersCase* f = FindCase(cases, "float-0.1-is-not-double-0.1");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(std::get<float>(f->binding.find("n")->v), 0.1f);
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

}  // namespace
}  // namespace warren::broker
