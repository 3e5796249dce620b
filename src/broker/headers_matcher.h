// Headers-exchange matching with RabbitMQ's semantics: x-match all (default) / any, and the
// all-with-x / any-with-x variants that also compare binding arguments starting with "x-".
#pragma once

#include <string>
#include <vector>

#include "common/field_table.h"

namespace warren::broker {

class HeadersPattern {
 public:
  enum class Mode { kAll, kAny, kAllWithX, kAnyWithX };

  // Parses binding arguments; returns an error text for an invalid x-match value.
  static bool parse(const FieldTable& binding_args, HeadersPattern* out, std::string* error);

  bool matches(const FieldTable& headers) const;

 private:
  Mode mode_ = Mode::kAll;
  std::vector<std::pair<std::string, FieldValue>> expected_;
};

// Value equality as RabbitMQ's headers exchange compares (Erlang ==: numbers by value whatever
// their width, strings by bytes).
bool header_values_equal(const FieldValue& a, const FieldValue& b);

}  // namespace warren::broker
