// warrenctl's verbs over users, vhosts and permissions. Today the broker has one vhost ("/") on
// which every user may do everything, and users come from the configuration: the listings show
// that, and the verbs that change users, vhosts or permissions say they are not available yet
// (they come with the user/vhost/permission store of issue 13).
#include <algorithm>
#include <string>
#include <vector>

#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}

json::object full_access(std::string_view key, std::string_view value) {
  return json::object{{key, value}, {"configure", ".*"}, {"write", ".*"}, {"read", ".*"}};
}

}  // namespace

bool run_tenancy_verb(ControlContext& ctx, const std::string& verb, const json::object& req,
                      ControlReply& reply) {
  if (verb == "list_permissions") {
    std::string vhost = str(req, "vhost", "/");
    if (ctx.broker.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", 65, /*plain=*/true);
      return true;
    }
    std::vector<std::string> names;
    for (const auto& [name, u] : ctx.broker.users().all()) names.push_back(name);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) reply.rows.push_back(full_access("user", n));
    return true;
  }
  if (verb == "list_user_permissions") {
    std::string user = str(req, "user");
    if (ctx.broker.users().find(user) == nullptr) {
      reply.error("{:no_such_user, \"" + user + "\"}", 69);
      return true;
    }
    if (ctx.broker.find_vhost("/") != nullptr) reply.rows.push_back(full_access("vhost", "/"));
    return true;
  }
  if (verb == "add_user" || verb == "delete_user" || verb == "change_password" ||
      verb == "set_user_tags" || verb == "add_vhost" || verb == "delete_vhost" ||
      verb == "set_permissions" || verb == "clear_permissions" || verb == "set_vhost_limits") {
    reply.error(verb + " is not available yet: Warren has no user, vhost and permission store "
                       "(users come from the configuration, the only vhost is /)",
                70);
    return true;
  }
  return false;
}

}  // namespace warren::server
