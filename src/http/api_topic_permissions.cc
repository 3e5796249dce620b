// Topic permissions in the management API, as RabbitMQ 3.10.8's (administrators only):
//   GET /api/topic-permissions                          every user's in every vhost
//   GET|PUT|DELETE /api/topic-permissions/{vhost}/{user}[/{exchange}]
//   GET /api/users/{user}/topic-permissions, GET /api/vhosts/{vhost}/topic-permissions
// As rabbit_mgmt_wm_topic_permission: a GET of {vhost}/{user} answers the list of that user's
// topic permissions in the vhost (404 when there is none), with or without an exchange in the
// path; PUT takes {"exchange", "write", "read"} (201 when the user had none in the vhost, else
// 204); DELETE clears the one exchange named in the path, or all of them.
#include <variant>

#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

// Field order as RabbitMQ writes each resource's objects.
json::object entry_json(const auth::TopicPermissionEntry& e, bool vhost_first) {
  json::object o;
  if (vhost_first) {
    o["vhost"] = e.vhost;
    o["user"] = e.user;
  } else {
    o["user"] = e.user;
    o["vhost"] = e.vhost;
  }
  o["exchange"] = e.exchange;
  o["write"] = e.permissions.write;
  o["read"] = e.permissions.read;
  return o;
}

json::array entries(const broker::Broker& b, const std::string* user, const std::string* vhost,
                    bool vhost_first) {
  json::array items;
  for (const auth::TopicPermissionEntry& e : b.list_topic_permissions())
    if ((user == nullptr || e.user == *user) && (vhost == nullptr || e.vhost == *vhost))
      items.push_back(entry_json(e, vhost_first));
  return items;
}

// RabbitMQ's list order: by vhost, then user (rabbit_mgmt_util:reply_list's default sort keys).
void sort_by_vhost_then_user(json::array& items) {
  auto key = [](const json::value& v) {
    const json::object& o = v.get_object();
    return std::pair{std::string_view(o.at("vhost").get_string()),
                     std::string_view(o.at("user").get_string())};
  };
  std::stable_sort(items.begin(), items.end(),
                   [&](const json::value& a, const json::value& b) { return key(a) < key(b); });
}

// rabbit_mgmt_util:bad_request of {invalid_regexp, Pattern, {Message, Offset}}: the message is
// an Erlang charlist, so it comes out as a list of character codes.
void reply_invalid_regexp(Response& r, const std::string& pattern, const auth::RegexError& e) {
  json::array codes;
  for (unsigned char ch : e.message) codes.push_back(ch);
  json::array reason{"invalid_regexp", pattern, json::array{std::move(codes), e.offset}};
  reply_json(r, bhttp::status::bad_request,
             json::object{{"error", "bad_request"}, {"reason", std::move(reason)}});
}

void put_topic_permission(ApiCall& c, const std::string& vhost, const std::string& user,
                          bool existed) {
  Response& r = c.r;
  if (c.broker.find_vhost(vhost) == nullptr || c.broker.users().find(user) == nullptr)
    return reply_error(r, bhttp::status::bad_request, "bad_request", "vhost_or_user_not_found");
  auto body = json_body(c.req, r);
  if (!body) return;
  std::string missing;  // rabbit_mgmt_util:with_decode names every missing key
  for (const char* key : {"exchange", "write", "read"})
    if (!body->contains(key))
      missing += std::string(missing.empty() ? "" : ",") + "{key_missing," + key + "}";
  if (!missing.empty())
    return reply_error(r, bhttp::status::bad_request, "bad_request", "[" + missing + "]");
  auth::TopicPermissionSet p{json_string(*body, "write"), json_string(*body, "read")};
  for (const std::string* pattern : {&p.write, &p.read}) {
    auto compiled = auth::ErlangRegex::compile(*pattern);
    if (auto* e = std::get_if<auth::RegexError>(&compiled))
      return reply_invalid_regexp(r, *pattern, *e);
  }
  if (auto s = c.broker.set_topic_permissions(user, vhost, json_string(*body, "exchange"),
                                              std::move(p)))
    return reply_broker_error(r, *s);
  no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
}

void handle_user_vhost(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& vhost = seg[1];
  const std::string& user = seg[2];
  json::array mine;
  if (c.broker.find_vhost(vhost) != nullptr && c.broker.users().find(user) != nullptr)
    mine = entries(c.broker, &user, &vhost, false);
  if (c.method() == bhttp::verb::put) return put_topic_permission(c, vhost, user, !mine.empty());
  if (c.method() == bhttp::verb::get) {
    if (mine.empty()) return not_found(r);
    return reply_json(r, bhttp::status::ok, mine);
  }
  if (c.method() == bhttp::verb::delete_) {
    if (mine.empty()) return not_found(r);
    const std::string* exchange = seg.size() == 4 ? &seg[3] : nullptr;
    if (auto s = c.broker.clear_topic_permissions(user, vhost, exchange))
      return reply_broker_error(r, *s);
    return no_content(r);
  }
  method_not_allowed(r);
}

}  // namespace

void handle_topic_permissions(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  if (!c.administrator) return not_administrator(r);
  if (seg[0] == "topic-permissions" && (seg.size() == 3 || seg.size() == 4))
    return handle_user_vhost(c);
  if (c.method() != bhttp::verb::get) return method_not_allowed(r);
  if (seg[0] == "topic-permissions" && seg.size() == 1) {
    json::array items = entries(c.broker, nullptr, nullptr, false);
    sort_by_vhost_then_user(items);
    return reply_list(c.target, std::move(items), r);
  }
  if (seg.size() != 3) return not_found(r);
  if (seg[0] == "users") {
    if (c.broker.users().find(seg[1]) == nullptr) return not_found(r);
    json::array items = entries(c.broker, &seg[1], nullptr, false);
    sort_by_vhost_then_user(items);
    return reply_list(c.target, std::move(items), r);
  }
  if (c.broker.find_vhost(seg[1]) == nullptr) return not_found(r);
  json::array items = entries(c.broker, nullptr, &seg[1], true);
  sort_by_vhost_then_user(items);
  reply_list(c.target, std::move(items), r);
}

}  // namespace warren::http
