#include "broker/headers_matcher.h"

#include <type_traits>

namespace warren::broker {
namespace {

std::optional<double> as_number(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> std::optional<double> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
          return static_cast<double>(x);
        else
          return std::nullopt;
      },
      v.v);
}

}  // namespace

bool header_values_equal(const FieldValue& a, const FieldValue& b) {
  auto ai = a.as_int(), bi = b.as_int();
  if (ai && bi) return *ai == *bi;
  auto an = as_number(a), bn = as_number(b);
  if (an && bn) return *an == *bn;
  auto as = a.as_string(), bs = b.as_string();
  if (as && bs) return *as == *bs;
  return a == b;
}

bool HeadersPattern::parse(const FieldTable& args, HeadersPattern* out, std::string* error) {
  out->mode_ = Mode::kAll;
  out->expected_.clear();
  if (const FieldValue* xm = args.find("x-match")) {
    // RabbitMQ accepts x-match only as a long string ('S').
    const std::string* str = std::get_if<std::string>(&xm->v);
    if (str == nullptr) {
      *error = "Invalid x-match field type " + std::string(1, xm->tag()) + " (value " +
               to_string(*xm) + "); expected longstr";
      return false;
    }
    std::optional<std::string_view> s = std::string_view(*str);
    if (s && *s == "all") out->mode_ = Mode::kAll;
    else if (s && *s == "any") out->mode_ = Mode::kAny;
    else if (s && *s == "all-with-x") out->mode_ = Mode::kAllWithX;
    else if (s && *s == "any-with-x") out->mode_ = Mode::kAnyWithX;
    else {
      *error = "Invalid x-match field value " + to_string(*xm) +
               "; expected all, any, all-with-x, or any-with-x";
      return false;
    }
  }
  bool with_x = out->mode_ == Mode::kAllWithX || out->mode_ == Mode::kAnyWithX;
  for (const auto& [k, v] : args.entries) {
    if (k == "x-match") continue;
    if (!with_x && k.rfind("x-", 0) == 0) continue;
    out->expected_.emplace_back(k, v);
  }
  return true;
}

bool HeadersPattern::matches(const FieldTable& headers) const {
  bool all = mode_ == Mode::kAll || mode_ == Mode::kAllWithX;
  for (const auto& [k, v] : expected_) {
    const FieldValue* h = headers.find(k);
    // A void binding value asks only for the header's presence.
    bool ok = h != nullptr &&
              (std::holds_alternative<Void>(v.v) || header_values_equal(v, *h));
    if (all && !ok) return false;
    if (!all && ok) return true;
  }
  return all;
}

}  // namespace warren::broker
