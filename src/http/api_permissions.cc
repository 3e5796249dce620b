// /api/permissions[/{vhost}/{user}] (list: administrators; show, set with PUT, clear) and
// /api/policies[/{vhost}[/{name}]] (list, show, set with PUT, clear: administrators and
// policymakers change them; management users read those of their vhosts).
#include "broker/policy.h"
#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object permission_json(const broker::UserPermissionEntry& e) {
  return json::object{{"user", e.user},
                      {"vhost", e.vhost},
                      {"configure", e.permissions.configure},
                      {"write", e.permissions.write},
                      {"read", e.permissions.read}};
}

json::object policy_json(const broker::Policy& p, const std::string& vhost) {
  return json::object{{"vhost", vhost},
                      {"name", p.name},
                      {"pattern", p.pattern},
                      {"apply-to", broker::apply_to_name(p.apply_to)},
                      {"definition", json::parse(p.definition_json)},
                      {"priority", p.priority}};
}

// RabbitMQ's API escapes < and > of the Erlang terms in its validation texts.
std::string html_escaped(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '<') out += "&lt;";
    else if (ch == '>') out += "&gt;";
    else out += ch;
  }
  return out;
}

void handle_permission_paths(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  if (!c.administrator) return not_administrator(r);
  if (seg.size() == 1) {
    if (c.method() != bhttp::verb::get) return method_not_allowed(r);
    json::array items;
    for (const std::string& vhost : c.broker.list_vhosts())
      for (const broker::UserPermissionEntry& e : c.broker.list_permissions(vhost))
        items.push_back(permission_json(e));
    return reply_list(c.target, std::move(items), r);
  }
  if (seg.size() != 3) return not_found(r);
  const std::string& vhost = seg[1];
  const std::string& user = seg[2];
  if (c.broker.find_vhost(vhost) == nullptr || c.broker.users().find(user) == nullptr)
    return not_found(r);
  if (c.method() == bhttp::verb::get) {
    for (const broker::UserPermissionEntry& e : c.broker.list_permissions(vhost))
      if (e.user == user) return reply_json(r, bhttp::status::ok, permission_json(e));
    return not_found(r);
  }
  if (c.method() == bhttp::verb::put) {
    auto body = json_body(c.req, r);
    if (!body) return;
    bool existed = c.broker.access_control().has_vhost_access(user, vhost);
    if (auto s = c.broker.set_permissions(user, vhost,
                                          {json_string(*body, "configure"),
                                           json_string(*body, "write"),
                                           json_string(*body, "read")}))
      return reply_broker_error(r, *s);
    return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
  }
  if (c.method() == bhttp::verb::delete_) {
    if (!c.broker.access_control().has_vhost_access(user, vhost)) return not_found(r);
    if (auto s = c.broker.clear_permissions(user, vhost)) return reply_broker_error(r, *s);
    return no_content(r);
  }
  method_not_allowed(r);
}

void handle_policy_paths(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  if (seg.size() <= 2) {
    if (c.method() != bhttp::verb::get) return method_not_allowed(r);
    if (seg.size() == 2 && (c.broker.find_vhost(seg[1]) == nullptr || !c.visible(seg[1])))
      return not_found(r);
    json::array items;
    for (const std::string& name : c.broker.list_vhosts()) {
      if ((seg.size() == 2 && name != seg[1]) || !c.visible(name)) continue;
      for (const broker::Policy& p : c.broker.find_vhost(name)->policies())
        items.push_back(policy_json(p, name));
    }
    return reply_list(c.target, std::move(items), r);
  }
  if (seg.size() != 3) return not_found(r);
  broker::VHost* vh = c.broker.find_vhost(seg[1]);
  if (vh == nullptr || !c.visible(seg[1])) return not_found(r);
  const std::string& name = seg[2];
  const broker::Policy* existing = nullptr;
  for (const broker::Policy& p : vh->policies())
    if (p.name == name) existing = &p;
  if (c.method() == bhttp::verb::get) {
    if (existing == nullptr) return not_found(r);
    return reply_json(r, bhttp::status::ok, policy_json(*existing, seg[1]));
  }
  if (!c.administrator && !has_tag(c.user, "policymaker")) return not_administrator(r);
  if (c.method() == bhttp::verb::put) {
    auto body = json_body(c.req, r);
    if (!body) return;
    const json::value* def = body->if_contains("definition");
    int64_t priority = 0;
    if (const json::value* p = body->if_contains("priority"); p && p->is_int64())
      priority = p->get_int64();
    auto policy = broker::make_policy(name, json_string(*body, "pattern"),
                                      def == nullptr ? std::string() : json::serialize(*def),
                                      json_string(*body, "apply-to", "all"), priority);
    if (!policy) {
      const broker::Error& e = policy.error();
      return reply_error(r, bhttp::status::bad_request, "bad_request",
                         e.code == broker::ErrorCode::kCommandInvalid
                             ? e.text
                             : html_escaped("Validation failed\n\n" + e.text + "\n"));
    }
    bool existed = existing != nullptr;
    if (auto s = vh->set_policy(std::move(*policy))) return reply_broker_error(r, *s);
    return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
  }
  if (c.method() == bhttp::verb::delete_) {
    if (existing == nullptr) return not_found(r);
    if (auto s = vh->clear_policy(name)) return reply_broker_error(r, *s);
    return no_content(r);
  }
  method_not_allowed(r);
}

}  // namespace

void handle_permissions(ApiCall& c) {
  if (c.seg()[0] == "policies") return handle_policy_paths(c);
  handle_permission_paths(c);
}

}  // namespace warren::http
