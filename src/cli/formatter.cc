#include "cli/formatter.h"

#include <cstdint>

namespace warren::cli {

namespace json = boost::json;

std::string table_value(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: return std::string(v.get_string());
    case json::kind::bool_: return v.get_bool() ? "true" : "false";
    case json::kind::null: return "";
    case json::kind::array: {
      std::string s = "[";
      for (const json::value& e : v.get_array()) {
        if (s.size() > 1) s += ", ";
        s += table_value(e);
      }
      return s + "]";
    }
    case json::kind::object: {
      // Erlang's view of an AMQP table: a list of {Key, Value} tuples.
      std::string s = "[";
      for (const auto& [k, e] : v.get_object()) {
        if (s.size() > 1) s += ",";
        s += "{\"" + std::string(k) + "\",";
        s += e.is_string() ? json::serialize(e) : table_value(e);
        s += "}";
      }
      return s + "]";
    }
    default: return json::serialize(v);
  }
}

// rabbitmqctl's JSON formatter shows an AMQP table as Erlang has it: a list of
// [key, type, value] (an empty table is []).
json::value typed_table(const json::object& t) {
  json::array out;
  for (const auto& [k, v] : t) {
    const char* type = "void";
    json::value value = v;
    switch (v.kind()) {
      case json::kind::int64:
        type = v.get_int64() >= INT32_MIN && v.get_int64() <= INT32_MAX ? "signedint" : "long";
        break;
      case json::kind::uint64: type = "long"; break;
      case json::kind::double_: type = "double"; break;
      case json::kind::bool_: type = "bool"; break;
      case json::kind::string: type = "longstr"; break;
      case json::kind::array: type = "array"; break;
      case json::kind::object:
        type = "table";
        value = typed_table(v.get_object());
        break;
      default: break;
    }
    out.push_back(json::array{json::string(k), type, std::move(value)});
  }
  return out;
}

void RowPrinter::begin() {
  if (json_) {
    std::fputs("[\n", stdout);
    return;
  }
  if (!headers_) return;
  std::string line;
  for (const std::string& c : columns_) {
    if (!line.empty()) line += '\t';
    line += c;
  }
  std::printf("%s\n", line.c_str());
}

void RowPrinter::row(const json::object& r) {
  if (json_) {
    json::object o;
    for (const std::string& c : columns_) {
      auto it = r.find(c);
      json::value v = it == r.end() ? json::value(nullptr) : it->value();
      if (v.is_object()) v = typed_table(v.get_object());
      o[c] = std::move(v);
    }
    std::printf("%s%s\n", rows_ == 0 ? "" : ",", json::serialize(o).c_str());
  } else {
    std::string line;
    bool first = true;
    for (const std::string& c : columns_) {
      if (!first) line += '\t';
      first = false;
      auto it = r.find(c);
      if (it != r.end()) line += table_value(it->value());
    }
    std::printf("%s\n", line.c_str());
  }
  ++rows_;
}

void RowPrinter::end() {
  if (json_) std::fputs("]\n", stdout);
  std::fflush(stdout);
}

}  // namespace warren::cli
