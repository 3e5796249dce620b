#include "broker/field_table_json.h"

// Boost.JSON's implementation is compiled once, in warren_core (broker/policy_json_impl.cc).

namespace warren {

namespace json = boost::json;

json::value to_json(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> json::value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return json::value(x);
        } else if constexpr (std::is_integral_v<T>) {
          return json::value(static_cast<int64_t>(x));
        } else if constexpr (std::is_floating_point_v<T>) {
          return json::value(static_cast<double>(x));
        } else if constexpr (std::is_same_v<T, Decimal>) {
          double d = x.value;
          for (int i = 0; i < x.scale; ++i) d /= 10;
          return json::value(d);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return json::value(json::string(x));
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          json::array a;
          for (const FieldValue& e : x) a.push_back(to_json(e));
          return a;
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          return json::value(x.seconds);
        } else if constexpr (std::is_same_v<T, std::shared_ptr<FieldTable>>) {
          return x ? json::value(to_json(*x)) : json::value(json::object());
        } else if constexpr (std::is_same_v<T, ByteArray>) {
          return json::value(json::string(x.bytes));
        } else {
          return json::value(nullptr);
        }
      },
      v.v);
}

json::object to_json(const FieldTable& t) {
  json::object o;
  for (const auto& [k, v] : t.entries) o[k] = to_json(v);
  return o;
}

FieldValue field_from_json(const json::value& v) {
  switch (v.kind()) {
    case json::kind::bool_: return FieldValue(v.get_bool());
    case json::kind::int64: return FieldValue(v.get_int64());
    case json::kind::uint64: return FieldValue(static_cast<int64_t>(v.get_uint64()));
    case json::kind::double_: return FieldValue(v.get_double());
    case json::kind::string: return FieldValue(std::string(v.get_string()));
    case json::kind::array: {
      FieldArray a;
      for (const json::value& e : v.get_array()) a.push_back(field_from_json(e));
      return FieldValue(std::move(a));
    }
    case json::kind::object: return FieldValue(table_from_json(v));
    default: return FieldValue();
  }
}

FieldTable table_from_json(const json::value& v) {
  FieldTable t;
  if (!v.is_object()) return t;
  for (const auto& [k, e] : v.get_object()) t.set(std::string(k), field_from_json(e));
  return t;
}

}  // namespace warren
