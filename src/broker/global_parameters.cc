#include "broker/global_parameters.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace warren::broker {

namespace json = boost::json;

const json::value* GlobalParameters::find(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

void GlobalParameters::put(std::string name, json::value value) {
  json::value canonical = canonical_json(std::move(value));
  auto it = values_.find(name);
  if (it == values_.end())
    values_.emplace(std::move(name), std::move(canonical));
  else
    it->second = std::move(canonical);  // in place: the map node (and a pointer to it) stays
}

bool GlobalParameters::erase(std::string_view name) {
  auto it = values_.find(name);
  if (it == values_.end()) return false;
  values_.erase(it);
  return true;
}

json::value canonical_json(json::value v) {
  if (v.is_array()) {
    for (json::value& e : v.get_array()) e = canonical_json(std::move(e));
    return v;
  }
  if (!v.is_object()) return v;
  json::object& o = v.get_object();
  std::vector<std::pair<std::string, json::value>> entries;
  entries.reserve(o.size());
  for (auto& [key, value] : o) entries.emplace_back(std::string(key), canonical_json(value));
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json::object sorted(o.storage());
  sorted.reserve(entries.size());
  for (auto& [key, value] : entries) sorted.emplace(key, std::move(value));
  return sorted;
}

namespace {

// float_to_binary(F, [short]): the shortest digits that read back as the same double, written
// in decimal or scientific notation, whichever is shorter (decimal on a tie), always with a
// digit after the point.
std::string erlang_float(double d) {
  char buf[64];
  auto end = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific).ptr;
  std::string_view s(buf, static_cast<size_t>(end - buf));  // e.g. "-1.5e+03", "1e-07"
  std::string sign;
  if (!s.empty() && s[0] == '-') {
    sign = "-";
    s.remove_prefix(1);
  }
  const size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e))
    if (c != '.') digits.push_back(c);
  std::string_view exp_text = s.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+') exp_text.remove_prefix(1);
  int exp = 0;
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);

  std::string scientific = digits.substr(0, 1) + "." +
                           (digits.size() > 1 ? digits.substr(1) : std::string("0")) + "e" +
                           std::to_string(exp);
  std::string decimal;
  if (exp < 0) {
    decimal = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (digits.size() > static_cast<size_t>(exp) + 1) {
    decimal = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
              digits.substr(static_cast<size_t>(exp) + 1);
  } else {
    decimal = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
  }
  return sign + (scientific.size() < decimal.size() ? scientific : decimal);
}

void append_rabbit_json(std::string& out, const json::value& v) {
  if (v.is_double()) {
    out += erlang_float(v.get_double());
  } else if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const json::value& e : v.get_array()) {
      if (!first) out.push_back(',');
      first = false;
      append_rabbit_json(out, e);
    }
    out.push_back(']');
  } else if (v.is_object()) {
    out.push_back('{');
    bool first = true;
    for (const auto& [key, value] : v.get_object()) {
      if (!first) out.push_back(',');
      first = false;
      out += json::serialize(json::string_view(key));
      out.push_back(':');
      append_rabbit_json(out, value);
    }
    out.push_back('}');
  } else {
    out += json::serialize(v);  // null, booleans, integers and strings print alike
  }
}

}  // namespace

std::string rabbit_json_text(const json::value& v) {
  std::string out;
  append_rabbit_json(out, v);
  return out;
}

OpResult<json::value> parse_global_parameter(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  // rabbit_json:try_decode's reason for any malformed text, whatever the flaw.
  if (ec) return make_error(ErrorCode::kPreconditionFailed, "JSON decoding error. Reason: badarg");
  return v;
}

}  // namespace warren::broker
