// AMQP field tables and values with every RabbitMQ field type; decoding keeps each value's type tag
// so that a decoded table re-encodes to exactly the same bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/wire.h"

namespace warren {

struct FieldValue;
using FieldArray = std::vector<FieldValue>;

struct FieldTable {
  std::vector<std::pair<std::string, FieldValue>> entries;

  const FieldValue* find(std::string_view key) const;
  void set(std::string key, FieldValue value);
  bool empty() const { return entries.empty(); }
  size_t size() const { return entries.size(); }
  bool operator==(const FieldTable& o) const;
};

struct Decimal {
  uint8_t scale = 0;
  uint32_t value = 0;
  bool operator==(const Decimal&) const = default;
};

struct Void {
  bool operator==(const Void&) const = default;
};

// A byte array ('x') kept apart from a long string ('S') so the tag survives a round trip.
struct ByteArray {
  std::string bytes;
  bool operator==(const ByteArray&) const = default;
};

struct Timestamp {
  uint64_t seconds = 0;
  bool operator==(const Timestamp&) const = default;
};

struct FieldValue {
  // Tag letters as RabbitMQ writes them: t b B s u I i l f d D S A T F V x.
  using Variant = std::variant<bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t,
                               float, double, Decimal, std::string, FieldArray, Timestamp,
                               std::shared_ptr<FieldTable>, Void, ByteArray>;
  Variant v;

  FieldValue() : v(Void{}) {}
  template <class T>
  FieldValue(T x) : v(std::move(x)) {}
  FieldValue(const char* s) : v(std::string(s)) {}
  FieldValue(std::string_view s) : v(std::string(s)) {}
  FieldValue(FieldTable t) : v(std::make_shared<FieldTable>(std::move(t))) {}

  char tag() const;
  bool operator==(const FieldValue& o) const;

  // Typed views used by argument parsing; nullopt when the value is not of a fitting type.
  std::optional<int64_t> as_int() const;  // any integer type
  std::optional<std::string_view> as_string() const;  // 'S' or 'x'
  std::optional<bool> as_bool() const;
  const FieldTable* as_table() const;
};

// Decodes the body of a table (the bytes after its u32 length). nullopt on malformed input,
// unknown tags or nesting deeper than a sane limit.
std::optional<FieldTable> decode_table(std::string_view bytes);
void encode_table(Writer& w, const FieldTable& t);  // writes the u32 length and the entries
std::string encode_table_body(const FieldTable& t);  // the entries only, without length

// Reads a table (u32 length + entries) and returns its raw body without decoding it.
std::string_view read_raw_table(Reader& r);

// Human-readable rendering for logs and error texts.
std::string to_string(const FieldValue& v);
std::string to_string(const FieldTable& t);

}  // namespace warren
