// /api/users[/{user}]: list, show, create or update (PUT), delete. Administrators only.
#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object user_json(const auth::User& u) {
  return json::object{{"name", u.name},
                      {"password_hash", u.password_hash},
                      {"hashing_algorithm", "rabbit_password_hashing_sha256"},
                      {"tags", tags_json(u)},
                      {"limits", json::object()}};
}

}  // namespace

void handle_users(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  const std::string& what = seg[0];
  if (what == "users") {
    if (!c.administrator) return not_administrator(r);
    if (seg.size() == 1 && c.method() == bhttp::verb::get) {
      json::array items;
      for (const auth::User& u : c.broker.list_users()) items.push_back(user_json(u));
      reply_list(c.target, std::move(items), r);
      return;
    }
    if (seg.size() != 2) return not_found(r);
    const std::string& name = seg[1];
    const auth::User* u = c.broker.users().find(name);
    if (c.method() == bhttp::verb::get) {
      if (u == nullptr) return not_found(r);
      return reply_json(r, bhttp::status::ok, user_json(*u));
    }
    if (c.method() == bhttp::verb::put) {
      auto body = json_body(c.req, r);
      if (!body) return;
      std::vector<std::string> tags;
      if (const json::value* t = body->if_contains("tags")) {
        if (t->is_string()) {  // "administrator,monitoring" (the older form)
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
      if (auto s = c.broker.put_user_with_hash(name, std::move(hash), std::move(tags)))
        return reply_broker_error(r, *s);
      return no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
    }
    if (c.method() == bhttp::verb::delete_) {
      if (u == nullptr) return not_found(r);
      if (auto s = c.broker.delete_user(name)) return reply_broker_error(r, *s);
      return no_content(r);
    }
    return method_not_allowed(r);
  }

  not_found(r);
}

}  // namespace warren::http
