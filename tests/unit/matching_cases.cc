// Loader for the shared matching cases (see matching_cases.h).
#include "matching_cases.h"

// Boost.JSON's implementation comes from warren_core (src/broker/policy_json_impl.cc).
#include <boost/json.hpp>

#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#ifndef WARREN_TEST_DATA_DIR
#error "WARREN_TEST_DATA_DIR must name tests/data (set by CMakeLists.txt)"
#endif

namespace warren::testdata {
namespace {

namespace json = boost::json;

[[noreturn]] void Fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

json::value ParseFile(const std::string& name) {
  std::string path = DataDir() + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path, "cannot open");
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec) Fail(path, "invalid JSON: " + ec.message());
  if (!v.is_object() || !v.as_object().contains("cases") || !v.at("cases").is_array())
    Fail(path, "expected an object with a \"cases\" array");
  return v;
}

std::string Str(const json::value& v, const std::string& where) {
  if (!v.is_string()) Fail(where, "expected a string, got " + json::serialize(v));
  const json::string& s = v.as_string();
  return std::string(s.data(), s.size());
}

const json::array& Arr(const json::value& v, const std::string& where) {
  if (!v.is_array()) Fail(where, "expected an array, got " + json::serialize(v));
  return v.as_array();
}

const json::value& Field(const json::value& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.as_object().contains(key))
    Fail(where, std::string("missing \"") + key + "\" in " + json::serialize(obj));
  return obj.at(key);
}

int64_t Int(const json::value& v, int64_t lo, int64_t hi, const std::string& where) {
  if (!v.is_int64() && !v.is_uint64()) Fail(where, "expected an integer, got " + json::serialize(v));
  if (v.is_uint64() && v.as_uint64() > uint64_t(std::numeric_limits<int64_t>::max()))
    Fail(where, "integer out of range: " + json::serialize(v));
  int64_t n = v.is_int64() ? v.as_int64() : int64_t(v.as_uint64());
  if (n < lo || n > hi) Fail(where, "integer out of range: " + json::serialize(v));
  return n;
}

double Num(const json::value& v, const std::string& where) {
  if (!v.is_number()) Fail(where, "expected a number, got " + json::serialize(v));
  return v.to_number<double>();
}

FieldTable Table(const json::value& v, const std::string& where);

template <class T>
int64_t Lo() { return std::numeric_limits<T>::min(); }
template <class T>
int64_t Hi() { return std::numeric_limits<T>::max(); }

FieldValue Value(const json::value& v, const std::string& where) {
  switch (v.kind()) {
    case json::kind::null: return FieldValue(Void{});
    case json::kind::bool_: return FieldValue(v.as_bool());
    case json::kind::int64:
    case json::kind::uint64: return FieldValue(int32_t(Int(v, Lo<int32_t>(), Hi<int32_t>(), where)));
    case json::kind::double_: return FieldValue(v.as_double());
    case json::kind::string: return FieldValue(Str(v, where));
    case json::kind::array: {
      FieldArray a;
      for (const auto& e : v.as_array()) a.push_back(Value(e, where));
      return FieldValue(std::move(a));
    }
    case json::kind::object: break;
  }
  const json::object& o = v.as_object();
  if (o.size() != 1 || o.begin()->key().size() != 2 || o.begin()->key()[0] != '$')
    Fail(where, "a typed value is {\"$<type letter>\": value}, got " + json::serialize(v));
  char type = o.begin()->key()[1];
  const json::value& x = o.begin()->value();
  switch (type) {
    case 'b': return FieldValue(int8_t(Int(x, Lo<int8_t>(), Hi<int8_t>(), where)));
    case 'B': return FieldValue(uint8_t(Int(x, 0, Hi<uint8_t>(), where)));
    case 's': return FieldValue(int16_t(Int(x, Lo<int16_t>(), Hi<int16_t>(), where)));
    case 'u': return FieldValue(uint16_t(Int(x, 0, Hi<uint16_t>(), where)));
    case 'I': return FieldValue(int32_t(Int(x, Lo<int32_t>(), Hi<int32_t>(), where)));
    case 'i': return FieldValue(uint32_t(Int(x, 0, Hi<uint32_t>(), where)));
    case 'l': return FieldValue(int64_t(Int(x, Lo<int64_t>(), Hi<int64_t>(), where)));
    case 'f': return FieldValue(float(Num(x, where)));
    case 'd': return FieldValue(Num(x, where));
    case 'S': return FieldValue(Str(x, where));
    case 'x': return FieldValue(ByteArray{Str(x, where)});
    case 'T': return FieldValue(Timestamp{uint64_t(Int(x, 0, Hi<int64_t>(), where))});
    case 'D': {
      const json::array& d = Arr(x, where);
      if (d.size() != 2) Fail(where, "a decimal is [scale, unscaled]");
      return FieldValue(Decimal{uint8_t(Int(d[0], 0, 255, where)),
                                      uint32_t(Int(d[1], 0, Hi<uint32_t>(), where))});
    }
    case 'F': return FieldValue(Table(x, where));
    default: Fail(where, std::string("unknown type letter '") + type + "'");
  }
}

FieldTable Table(const json::value& v, const std::string& where) {
  if (!v.is_object()) Fail(where, "expected a table (object), got " + json::serialize(v));
  FieldTable t;
  for (const auto& kv : v.as_object())
    t.entries.emplace_back(std::string(kv.key()), Value(kv.value(), where + "." + std::string(kv.key())));
  return t;
}

}  // namespace

std::string DataDir() { return WARREN_TEST_DATA_DIR; }

std::vector<TopicCase> LoadTopicCases() {
  const std::string file = "topic_cases.json";
  json::value root = ParseFile(file);
  std::vector<TopicCase> out;
  std::set<std::string> patterns;
  for (const auto& c : root.at("cases").as_array()) {
    TopicCase tc;
    tc.pattern = Str(Field(c, "pattern", file), file);
    std::string where = file + " pattern '" + tc.pattern + "'";
    if (!patterns.insert(tc.pattern).second) Fail(where, "pattern listed twice");
    for (const auto& k : Arr(Field(c, "match", where), where)) tc.match.push_back(Str(k, where));
    for (const auto& k : Arr(Field(c, "no_match", where), where))
      tc.no_match.push_back(Str(k, where));
    std::set<std::string> seen;
    for (const auto* keys : {&tc.match, &tc.no_match})
      for (const auto& k : *keys)
        if (!seen.insert(k).second) Fail(where, "key '" + k + "' listed twice");
    out.push_back(std::move(tc));
  }
  return out;
}

std::vector<HeadersCase> LoadHeadersCases() {
  const std::string file = "headers_cases.json";
  json::value root = ParseFile(file);
  std::vector<HeadersCase> out;
  std::set<std::string> names;
  for (const auto& c : root.at("cases").as_array()) {
    HeadersCase hc;
    hc.name = Str(Field(c, "name", file), file);
    std::string where = file + " case '" + hc.name + "'";
    if (!names.insert(hc.name).second) Fail(where, "name used twice");
    hc.binding = Table(Field(c, "binding", where), where + " binding");
    auto headers = [&](const char* key, std::vector<FieldTable>* into) {
      for (const auto& h : Arr(Field(c, key, where), where))
        into->push_back(h.is_null() ? FieldTable{} : Table(h, where + " " + key));
    };
    headers("match", &hc.match);
    headers("no_match", &hc.no_match);
    out.push_back(std::move(hc));
  }
  return out;
}

}  // namespace warren::testdata
