#include "http/management_api.h"

#include <openssl/evp.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "broker/field_table_json.h"
#include "broker/queue.h"

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

struct Target {
  std::vector<std::string> segments;  // decoded, after "/api"
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<std::string> param(std::string_view key) const {
    for (const auto& [k, v] : query)
      if (k == key) return v;
    return std::nullopt;
  }
};

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
  r.result(status);
  r.set(bhttp::field::content_type, "application/json");
  r.set(bhttp::field::cache_control, "no-cache");
  r.body() = json::serialize(body);
}

void reply_error(Response& r, bhttp::status status, std::string_view error,
                 std::string_view reason) {
  reply_json(r, status, json::object{{"error", error}, {"reason", reason}});
}

void not_found(Response& r) { reply_error(r, bhttp::status::not_found, "Object Not Found", "Not Found"); }

void no_content(Response& r, bhttp::status status = bhttp::status::no_content) {
  r.result(status);
  r.body().clear();
}

// A broker error on a write, with RabbitMQ's status: 400 for a precondition failure (e.g.
// inequivalent arguments), 404 for a missing object, 401 for access refusals.
void reply_broker_error(Response& r, const broker::Error& e) {
  switch (e.code) {
    case broker::ErrorCode::kNotFound: return not_found(r);
    case broker::ErrorCode::kAccessRefused:
    case broker::ErrorCode::kResourceLocked:
      return reply_error(r, bhttp::status::bad_request, "bad_request", e.text);
    default: return reply_error(r, bhttp::status::bad_request, "bad_request", e.text);
  }
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

// Applies RabbitMQ's list parameters; `items` are whole objects. Paged output is
// {filtered_count, item_count, items, page, page_count, page_size, total_count}.
bool paginate(const Target& t, json::array items, Response& r) {
  size_t total = items.size();
  if (auto name = t.param("name"); name && !name->empty()) {
    bool regex = t.param("use_regex") == std::optional<std::string>("true");
    std::optional<auth::ErlangRegex> re;
    if (regex) {
      auto compiled = auth::ErlangRegex::compile(*name);
      if (auto* e = std::get_if<auth::RegexError>(&compiled)) {
        reply_error(r, bhttp::status::bad_request, "bad_request", "invalid regex: " + e->message);
        return true;
      }
      re = std::get<auth::ErlangRegex>(std::move(compiled));
    }
    json::array kept;
    for (json::value& v : items) {
      const json::value* n = v.as_object().if_contains("name");
      std::string_view s = n != nullptr && n->is_string() ? std::string_view(n->get_string()) : "";
      if (re ? re->search(s) : s.find(*name) != std::string_view::npos) kept.push_back(std::move(v));
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
  auto page_param = t.param("page");
  if (!page_param) {
    reply_json(r, bhttp::status::ok, items);
    return true;
  }
  auto number = [](const std::optional<std::string>& s, int64_t def) -> std::optional<int64_t> {
    if (!s) return def;
    char* end = nullptr;
    long long n = std::strtoll(s->c_str(), &end, 10);
    if (s->empty() || *end != 0 || n < 1) return std::nullopt;
    return n;
  };
  auto page = number(page_param, 1), page_size = number(t.param("page_size"), 100);
  if (!page || !page_size || *page_size > 500) {
    reply_error(r, bhttp::status::bad_request, "bad_request",
                !page_size || (page_size && *page_size > 500)
                    ? "Page size must be between 1 and 500"
                    : "Page must be a positive integer");
    return true;
  }
  size_t filtered = items.size();
  size_t page_count = filtered == 0 ? 0 : (filtered + *page_size - 1) / *page_size;
  if (filtered > 0 && static_cast<size_t>(*page) > page_count) {
    reply_error(r, bhttp::status::bad_request, "page_out_of_range",
                "Page out of range, page: " + std::to_string(*page) +
                    " page size: " + std::to_string(*page_size) +
                    ", len: " + std::to_string(filtered));
    return true;
  }
  json::array slice;
  size_t from = static_cast<size_t>(*page - 1) * *page_size;
  for (size_t i = from; i < std::min(filtered, from + *page_size); ++i)
    slice.push_back(std::move(items[i]));
  size_t count = slice.size();
  reply_json(r, bhttp::status::ok,
             json::object{{"filtered_count", filtered},
                          {"item_count", count},
                          {"items", std::move(slice)},
                          {"page", *page},
                          {"page_count", page_count},
                          {"page_size", *page_size},
                          {"total_count", total}});
  return true;
}

// ---- objects ----

json::object queue_json(const broker::Queue& q, const broker::VHost& vh, const std::string& node) {
  size_t unacked = 0;
  for (const broker::Consumer* c : q.consumers()) unacked += c->unacked;
  const broker::Policy* p = vh.policy_for_queue(q.name());
  json::object o;
  o["name"] = q.name();
  o["vhost"] = vh.name();
  o["durable"] = q.durable();
  o["auto_delete"] = q.auto_delete();
  o["exclusive"] = q.exclusive();
  o["arguments"] = to_json(q.options().arguments);
  o["node"] = node;
  o["type"] = "classic";
  o["state"] = "running";
  o["consumers"] = q.consumer_count();
  o["messages"] = q.message_count() + unacked;
  o["messages_ready"] = q.message_count();
  o["messages_unacknowledged"] = unacked;
  o["message_bytes"] = q.message_bytes();
  o["message_bytes_ready"] = q.message_bytes();
  o["messages_ram"] = q.messages_in_ram();
  o["policy"] = p != nullptr ? json::value(p->name) : json::value(nullptr);
  o["effective_policy_definition"] =
      p != nullptr ? json::parse(p->definition_json) : json::value(json::object());
  return o;
}

json::object vhost_json(broker::Broker& b, const std::string& name, const std::string& node) {
  const broker::VHost* vh = b.find_vhost(name);
  size_t ready = 0, unacked = 0;
  for (const auto& [qname, q] : vh->queues()) {
    ready += q->message_count();
    for (const broker::Consumer* c : q->consumers()) unacked += c->unacked;
  }
  std::string description = name == "/" ? "Default virtual host" : "";
  return json::object{{"name", name},
                      {"description", description},
                      {"tags", json::array()},
                      {"metadata", json::object{{"description", description},
                                                {"tags", json::array()}}},
                      {"default_queue_type", "undefined"},
                      {"tracing", false},
                      {"cluster_state", json::object{{node, "running"}}},
                      {"messages", ready + unacked},
                      {"messages_ready", ready},
                      {"messages_unacknowledged", unacked}};
}

json::object user_json(const auth::User& u) {
  return json::object{{"name", u.name},
                      {"password_hash", u.password_hash},
                      {"hashing_algorithm", "rabbit_password_hashing_sha256"},
                      {"tags", tags_json(u)},
                      {"limits", json::object()}};
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

bool boolean(const json::object& o, std::string_view key, bool def) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return def;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) return v->get_string() == "true";
  return def;
}

}  // namespace

void ManagementApi::handle(const Request& req, const Peer& peer, Response& r) {
  auto target = parse_target(req.target());
  if (!target) return not_found(r);
  const auto& seg = target->segments;

  // Authentication (every endpoint): basic auth against the broker's users.
  auto header = req.find(bhttp::field::authorization);
  if (header == req.end()) {
    r.result(bhttp::status::unauthorized);
    r.set(bhttp::field::www_authenticate, "Basic realm=\"RabbitMQ Management\"");
    return;
  }
  auto creds = basic_credentials(header->value());
  const auth::User* user =
      creds ? broker_.users().authenticate(creds->first, creds->second) : nullptr;
  if (user != nullptr && !peer.loopback && broker_.users().loopback_only(user->name)) user = nullptr;
  if (user == nullptr) {
    r.set(bhttp::field::www_authenticate, "Basic realm=\"RabbitMQ Management\"");
    return reply_error(r, bhttp::status::unauthorized, "not_authorized", "Login failed");
  }
  const bool administrator = has_tag(*user, "administrator");
  const bool monitoring = administrator || has_tag(*user, "monitoring");
  if (!monitoring && !has_tag(*user, "management") && !has_tag(*user, "policymaker"))
    return reply_error(r, bhttp::status::unauthorized, "not_authorised", "Not management user");
  auto not_admin = [&r] {
    reply_error(r, bhttp::status::unauthorized, "not_authorised", "Not administrator user");
  };
  // Vhosts the user may see: every one for monitoring/administrator, else those it has
  // permissions in (rabbit_mgmt_util:list_login_vhosts).
  auto visible = [&](const std::string& vhost) {
    return monitoring || broker_.access_control().has_vhost_access(user->name, vhost);
  };
  const auto method = req.method();
  const std::string& node = info_.node_name;
  if (seg.empty()) return not_found(r);
  const std::string& what = seg[0];

  if (what == "whoami" && seg.size() == 1 && method == bhttp::verb::get)
    return reply_json(r, bhttp::status::ok,
                      json::object{{"name", user->name}, {"tags", tags_json(*user)}});

  if (what == "overview" && seg.size() == 1 && method == bhttp::verb::get) {
    size_t queues = 0, exchanges = 0, consumers = 0, ready = 0, unacked = 0, channels = 0;
    for (const std::string& name : broker_.list_vhosts()) {
      if (!visible(name)) continue;
      const broker::VHost* vh = broker_.find_vhost(name);
      exchanges += vh->exchanges().size();
      for (const auto& [qname, q] : vh->queues()) {
        ++queues;
        consumers += q->consumer_count();
        ready += q->message_count();
        for (const broker::Consumer* c : q->consumers()) unacked += c->unacked;
      }
    }
    size_t connections = 0;
    for (const auto& [key, c] : broker_.connections()) {
      broker::ConnectionInfo ci = c->info();
      if (!monitoring && ci.user != user->name) continue;
      ++connections;
      channels += ci.channels.size();
    }
    json::array listeners{
        json::object{{"node", node}, {"protocol", "amqp"}, {"port", info_.amqp_port}},
        json::object{{"node", node}, {"protocol", "http"}, {"port", info_.management_port}}};
    return reply_json(
        r, bhttp::status::ok,
        json::object{{"management_version", info_.product_version},
                     {"rates_mode", "none"},
                     {"product_name", "Warren"},
                     {"product_version", info_.product_version},
                     {"rabbitmq_version", "3.10.8"},
                     {"cluster_name", node},
                     {"node", node},
                     {"disable_stats", false},
                     {"enable_queue_totals", false},
                     {"exchange_types",
                      json::array{
                          json::object{{"name", "direct"}, {"enabled", true}},
                          json::object{{"name", "fanout"}, {"enabled", true}},
                          json::object{{"name", "headers"}, {"enabled", true}},
                          json::object{{"name", "topic"}, {"enabled", true}},
                          json::object{{"name", "x-delayed-message"}, {"enabled", true}}}},
                     {"object_totals", json::object{{"channels", channels},
                                                    {"connections", connections},
                                                    {"consumers", consumers},
                                                    {"exchanges", exchanges},
                                                    {"queues", queues}}},
                     {"queue_totals", json::object{{"messages", ready + unacked},
                                                   {"messages_ready", ready},
                                                   {"messages_unacknowledged", unacked}}},
                     {"listeners", std::move(listeners)}});
  }

  if (what == "vhosts") {
    if (seg.size() == 1 && method == bhttp::verb::get) {
      json::array items;
      for (const std::string& name : broker_.list_vhosts())
        if (visible(name)) items.push_back(vhost_json(broker_, name, node));
      paginate(*target, std::move(items), r);
      return;
    }
    if (seg.size() != 2) return not_found(r);
    const std::string& name = seg[1];
    if (method == bhttp::verb::get) {
      if (broker_.find_vhost(name) == nullptr || !visible(name)) return not_found(r);
      return reply_json(r, bhttp::status::ok, vhost_json(broker_, name, node));
    }
    if (!administrator) return not_admin();
    if (method == bhttp::verb::put) {
      bool existed = broker_.find_vhost(name) != nullptr;
      if (auto s = broker_.create_vhost(name)) return reply_broker_error(r, *s);
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (method == bhttp::verb::delete_) {
      if (broker_.find_vhost(name) == nullptr) return not_found(r);
      if (auto s = broker_.delete_vhost(name)) return reply_broker_error(r, *s);
      return no_content(r);
    }
    return reply_error(r, bhttp::status::method_not_allowed, "method_not_allowed",
                       "Method Not Allowed");
  }

  if (what == "users") {
    if (!administrator) return not_admin();
    if (seg.size() == 1 && method == bhttp::verb::get) {
      json::array items;
      for (const auth::User& u : broker_.list_users()) items.push_back(user_json(u));
      paginate(*target, std::move(items), r);
      return;
    }
    if (seg.size() != 2) return not_found(r);
    const std::string& name = seg[1];
    const auth::User* u = broker_.users().find(name);
    if (method == bhttp::verb::get) {
      if (u == nullptr) return not_found(r);
      return reply_json(r, bhttp::status::ok, user_json(*u));
    }
    if (method == bhttp::verb::put) {
      auto body = json_body(req, r);
      if (!body) return;
      std::vector<std::string> tags;
      if (const json::value* t = body->if_contains("tags")) {
        if (t->is_string()) {  // "administrator,monitoring" (the API's older form)
          std::string_view all = t->get_string();
          while (!all.empty()) {
            std::string_view one = all.substr(0, all.find(','));
            if (!one.empty()) tags.emplace_back(one);
            all.remove_prefix(std::min(all.size(), one.size() + 1));
          }
        } else if (t->is_array()) {
          for (const json::value& x : t->get_array())
            if (x.is_string()) tags.emplace_back(x.get_string());
        }
      }
      std::string hash;
      if (const json::value* pw = body->if_contains("password"); pw && pw->is_string()) {
        hash = auth::hash_password_sha256(pw->get_string());
      } else if (const json::value* h = body->if_contains("password_hash"); h && h->is_string()) {
        hash = std::string(h->get_string());
      } else if (u != nullptr) {
        hash = u->password_hash;  // tags only: the password is kept
      }  // else: a new user without a password, who cannot log in with one (as RabbitMQ)
      bool existed = u != nullptr;
      if (auto s = broker_.put_user_with_hash(name, std::move(hash), std::move(tags)))
        return reply_broker_error(r, *s);
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (method == bhttp::verb::delete_) {
      if (u == nullptr) return not_found(r);
      if (auto s = broker_.delete_user(name)) return reply_broker_error(r, *s);
      return no_content(r);
    }
    return reply_error(r, bhttp::status::method_not_allowed, "method_not_allowed",
                       "Method Not Allowed");
  }

  if (what == "queues") {
    if (seg.size() <= 2 && method == bhttp::verb::get) {
      if (seg.size() == 2 && (broker_.find_vhost(seg[1]) == nullptr || !visible(seg[1])))
        return not_found(r);
      json::array items;
      for (const std::string& name : broker_.list_vhosts()) {
        if ((seg.size() == 2 && name != seg[1]) || !visible(name)) continue;
        const broker::VHost* vh = broker_.find_vhost(name);
        for (const auto& [qname, q] : vh->queues()) items.push_back(queue_json(*q, *vh, node));
      }
      paginate(*target, std::move(items), r);
      return;
    }
    if (seg.size() != 3) return not_found(r);
    broker::VHost* vh = broker_.find_vhost(seg[1]);
    if (vh == nullptr || !visible(seg[1])) return not_found(r);
    const std::string& qname = seg[2];
    if (method == bhttp::verb::get) {
      broker::Queue* q = vh->find_queue(qname);
      if (q == nullptr) return not_found(r);
      return reply_json(r, bhttp::status::ok, queue_json(*q, *vh, node));
    }
    if (method == bhttp::verb::put) {
      if (auto s = broker_.check_access(user->name, seg[1], auth::Permission::kConfigure, "queue",
                                        qname))
        return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
      auto body = json_body(req, r);
      if (!body) return;
      broker::QueueDeclare d;
      d.name = qname;
      d.durable = boolean(*body, "durable", true);
      d.auto_delete = boolean(*body, "auto_delete", false);
      if (const json::value* a = body->if_contains("arguments")) d.arguments = table_from_json(*a);
      bool existed = vh->find_queue(qname) != nullptr;
      auto ok = vh->declare_queue(d, 0);
      if (!ok) return reply_broker_error(r, ok.error());
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (method == bhttp::verb::delete_) {
      if (auto s = broker_.check_access(user->name, seg[1], auth::Permission::kConfigure, "queue",
                                        qname))
        return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
      broker::Queue* q = vh->find_queue(qname);
      if (q == nullptr) return not_found(r);
      bool if_unused = target->param("if-unused") == std::optional<std::string>("true");
      bool if_empty = target->param("if-empty") == std::optional<std::string>("true");
      auto deleted = vh->delete_queue(qname, if_unused, if_empty, q->owner_connection());
      if (!deleted) return reply_broker_error(r, deleted.error());
      return no_content(r);
    }
    return reply_error(r, bhttp::status::method_not_allowed, "method_not_allowed",
                       "Method Not Allowed");
  }

  if (what == "aliveness-test" && seg.size() == 2 && method == bhttp::verb::get) {
    if (broker_.find_vhost(seg[1]) == nullptr || !visible(seg[1])) return not_found(r);
    return reply_json(r, bhttp::status::ok, json::object{{"status", "ok"}});
  }

  if (what == "health" && seg.size() == 3 && seg[1] == "checks" && seg[2] == "alarms" &&
      method == bhttp::verb::get) {
    json::array alarms;
    if (broker_.memory_alarm())
      alarms.push_back(json::object{{"node", node}, {"resource", "memory"}});
    if (broker_.disk_alarm()) alarms.push_back(json::object{{"node", node}, {"resource", "disk"}});
    if (alarms.empty()) return reply_json(r, bhttp::status::ok, json::object{{"status", "ok"}});
    return reply_json(r, bhttp::status::service_unavailable,
                      json::object{{"status", "failed"},
                                   {"reason", "resource alarm(s) in effect in the cluster"},
                                   {"alarms", std::move(alarms)}});
  }
  not_found(r);
}

}  // namespace warren::http
