#include "http/api_call.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "auth/erlang_regex.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

// ---- request parsing ----

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i] == '+' ? ' ' : s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

std::optional<std::string> Target::param(std::string_view key) const {
  for (const auto& [k, v] : query)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<Target> parse_target(std::string_view target) {
  Target t;
  std::string_view path = target.substr(0, target.find('?'));
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      std::string_view pair = query.substr(0, query.find('&'));
      query = pair.size() < query.size() ? query.substr(pair.size() + 1) : std::string_view();
      size_t eq = pair.find('=');
      auto k = percent_decode(pair.substr(0, eq));
      auto v = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
      if (!k || !v) return std::nullopt;
      t.query.emplace_back(std::move(*k), std::move(*v));
    }
  }
  if (!path.starts_with("/api")) return std::nullopt;
  path.remove_prefix(4);
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    std::string_view seg = path.substr(0, path.find('/'));
    path.remove_prefix(seg.size());
    // '+' is a literal in paths (percent_decode turns it into a space for queries).
    std::string raw(seg);
    std::string protected_plus;
    for (char c : raw) protected_plus += c == '+' ? std::string("%2B") : std::string(1, c);
    auto decoded = percent_decode(protected_plus);
    if (!decoded) return std::nullopt;
    t.segments.push_back(std::move(*decoded));
  }
  return t;
}

std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view header) {
  constexpr std::string_view kBasic = "Basic ";
  if (header.size() < kBasic.size() || !std::equal(kBasic.begin(), kBasic.end(), header.begin(),
                                                   [](char a, char b) {
                                                     return std::tolower(a) == std::tolower(b);
                                                   }))
    return std::nullopt;
  std::string_view b64 = header.substr(kBasic.size());
  if (b64.size() % 4 != 0 || b64.size() > 4096) return std::nullopt;
  std::string decoded(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) --len;  // padding
  decoded.resize(len);
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

// ---- responses ----

void reply_json(Response& r, bhttp::status status, const json::value& body) {
  reply_json_text(r, status, json::serialize(body));
}

void reply_json_text(Response& r, bhttp::status status, std::string body) {
  r.result(status);
  r.set(bhttp::field::content_type, "application/json");
  r.set(bhttp::field::cache_control, "no-cache");
  r.body() = std::move(body);
}

void reply_error(Response& r, bhttp::status status, std::string_view error,
                 std::string_view reason) {
  reply_json(r, status, json::object{{"error", error}, {"reason", reason}});
}

void not_found(Response& r) {
  reply_error(r, bhttp::status::not_found, "Object Not Found", "Not Found");
}

void not_administrator(Response& r) {
  reply_error(r, bhttp::status::unauthorized, "not_authorised", "Not administrator user");
}

void method_not_allowed(Response& r) {
  reply_error(r, bhttp::status::method_not_allowed, "method_not_allowed", "Method Not Allowed");
}

void no_content(Response& r, bhttp::status status) {
  r.result(status);
  r.body().clear();
}

void reply_broker_error(Response& r, const broker::Error& e) {
  if (e.code == broker::ErrorCode::kNotFound) return not_found(r);
  reply_error(r, bhttp::status::bad_request, "bad_request", e.text);
}

bool has_tag(const auth::User& u, std::string_view tag) {
  return std::find(u.tags.begin(), u.tags.end(), tag) != u.tags.end();
}

json::array tags_json(const auth::User& u) {
  json::array tags;
  for (const std::string& t : u.tags) tags.push_back(json::string(t));
  return tags;
}

// ---- pagination (page, page_size, name, use_regex, sort, sort_reverse) ----

// Paged output is {filtered_count, item_count, items, page, page_count, page_size, total_count}.

Columns parse_columns(const std::string& columns) {
  Columns paths;
  std::string_view all = columns;
  while (!all.empty()) {
    std::string_view one = all.substr(0, all.find(','));
    all.remove_prefix(std::min(all.size(), one.size() + 1));
    std::vector<std::string> path;
    while (!one.empty()) {
      std::string_view part = one.substr(0, one.find('.'));
      one.remove_prefix(std::min(one.size(), part.size() + 1));
      path.emplace_back(part);
    }
    if (!path.empty()) paths.push_back(std::move(path));
  }
  return paths;
}

void keep_columns(const Columns& paths, json::value& item) {
  json::object kept;
  for (const auto& path : paths) {
    const json::value* v = &item;
    for (const std::string& key : path) {
      v = v->is_object() ? v->as_object().if_contains(key) : nullptr;
      if (v == nullptr) break;
    }
    if (v == nullptr) continue;
    json::object* into = &kept;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      json::value& next = (*into)[path[i]];
      if (!next.is_object()) next = json::object();
      into = &next.as_object();
    }
    (*into)[path.back()] = *v;
  }
  item = std::move(kept);
}

namespace {

void select_columns(const std::string& columns, json::array& items) {
  Columns paths = parse_columns(columns);
  for (json::value& item : items) keep_columns(paths, item);
}

}  // namespace

std::optional<NameFilter> name_filter(const Target& t, Response& r) {
  NameFilter f;
  f.text = t.param("name").value_or("");
  if (f.text.empty() || !t.flag("use_regex")) return f;
  auto compiled = auth::ErlangRegex::compile(f.text);
  if (auto* e = std::get_if<auth::RegexError>(&compiled)) {
    reply_error(r, bhttp::status::bad_request, "bad_request", "invalid regex: " + e->message);
    return std::nullopt;
  }
  f.regex = std::get<auth::ErlangRegex>(std::move(compiled));
  return f;
}

bool NameFilter::matches(std::string_view name) const {
  if (text.empty()) return true;
  return regex ? regex->search(name) : name.find(text) != std::string_view::npos;
}

bool read_paging(const Target& t, int64_t* page, int64_t* page_size, Response& r) {
  auto number = [](const std::optional<std::string>& s, int64_t def) -> std::optional<int64_t> {
    if (!s) return def;
    char* end = nullptr;
    long long n = std::strtoll(s->c_str(), &end, 10);
    if (s->empty() || *end != 0 || n < 1) return std::nullopt;
    return n;
  };
  auto p = number(t.param("page"), 1), size = number(t.param("page_size"), 100);
  if (!p || !size || *size > 500) {
    reply_error(r, bhttp::status::bad_request, "bad_request",
                !size || (size && *size > 500) ? "Page size must be between 1 and 500"
                                               : "Page must be a positive integer");
    return false;
  }
  *page = *p;
  *page_size = *size;
  return true;
}

void reply_page(const Target& t, int64_t page, int64_t page_size, size_t filtered, size_t total,
                const std::function<json::value(size_t)>& item, Response& r) {
  size_t page_count = filtered == 0 ? 0 : (filtered + page_size - 1) / page_size;
  if (filtered > 0 && static_cast<size_t>(page) > page_count) {
    reply_error(r, bhttp::status::bad_request, "page_out_of_range",
                "Page out of range, page: " + std::to_string(page) +
                    " page size: " + std::to_string(page_size) +
                    ", len: " + std::to_string(filtered));
    return;
  }
  json::array slice;
  size_t from = static_cast<size_t>(page - 1) * page_size;
  for (size_t i = from; i < std::min(filtered, from + page_size); ++i)
    if (json::value v = item(i); !v.is_null()) slice.push_back(std::move(v));
  if (auto columns = t.param("columns"); columns && !columns->empty())
    select_columns(*columns, slice);
  size_t count = slice.size();
  reply_json(r, bhttp::status::ok,
             json::object{{"filtered_count", filtered},
                          {"item_count", count},
                          {"items", std::move(slice)},
                          {"page", page},
                          {"page_count", page_count},
                          {"page_size", page_size},
                          {"total_count", total}});
}

void reply_list(const Target& t, json::array items, Response& r, size_t left_out) {
  size_t total = items.size() + left_out;
  auto filter = name_filter(t, r);
  if (!filter) return;
  if (!filter->empty()) {
    json::array kept;
    for (json::value& v : items) {
      const json::value* n = v.as_object().if_contains("name");
      std::string_view s = n != nullptr && n->is_string() ? std::string_view(n->get_string()) : "";
      if (filter->matches(s)) kept.push_back(std::move(v));
    }
    items = std::move(kept);
  }
  std::string sort = t.param("sort").value_or("name");
  bool reverse = t.param("sort_reverse") == std::optional<std::string>("true");
  auto key = [&sort](const json::value& v) -> const json::value* {
    return v.as_object().if_contains(sort);
  };
  std::stable_sort(items.begin(), items.end(), [&](const json::value& a, const json::value& b) {
    const json::value *x = key(a), *y = key(b);
    if (x == nullptr || y == nullptr) return x == nullptr && y != nullptr;
    if (x->is_string() && y->is_string()) return x->get_string() < y->get_string();
    if (x->is_number() && y->is_number()) return x->to_number<double>() < y->to_number<double>();
    return false;
  });
  if (reverse) std::reverse(items.begin(), items.end());
  if (!t.param("page")) {
    if (auto columns = t.param("columns"); columns && !columns->empty())
      select_columns(*columns, items);
    reply_json(r, bhttp::status::ok, items);
    return;
  }
  int64_t page = 0, page_size = 0;
  if (!read_paging(t, &page, &page_size, r)) return;
  reply_page(t, page, page_size, items.size(), total,
             [&](size_t i) { return std::move(items[i]); }, r);
}

std::optional<json::object> json_body(const Request& req, Response& r) {
  if (req.body().empty()) return json::object();
  json::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec || !v.is_object()) {
    reply_error(r, bhttp::status::bad_request, "bad_request", "not_json");
    return std::nullopt;
  }
  return std::move(v.get_object());
}

bool json_bool(const json::object& o, std::string_view key, bool def) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return def;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) return v->get_string() == "true";
  return def;
}

std::string json_string(const json::object& o, std::string_view key, std::string_view def) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::string(def);
  return std::string(v->get_string());
}

bool ApiCall::visible(const std::string& vhost) const {
  return monitoring || broker.access_control().has_vhost_access(user.name, vhost);
}

}  // namespace warren::http
