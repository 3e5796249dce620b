// warrenctl's topic permission verbs (set_, clear_, list_, list_user_topic_permissions): the
// broker's topic permission API (broker_topic_access.cc) with rabbitmqctl 3.10.8's error texts,
// checking order and exit codes (rabbit_auth_backend_internal: the patterns are compiled before
// the user and vhost are looked up; the user before the vhost).
#include <string>
#include <variant>

#include <fmt/format.h>

#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

constexpr int kDataError = 65;    // an unknown vhost in a listing
constexpr int kNoUser = 67;       // EX_NOUSER
constexpr int kUnavailable = 69;  // what rabbitmqctl reports for {:no_such_*} and bad regexps
constexpr int kSoftware = 70;

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}

// set/clear: "User u does not exist" (67), then "Virtual host v does not exist" (69).
bool user_and_vhost_exist(broker::Broker& b, const std::string& user, const std::string& vhost,
                          ControlReply& reply) {
  if (b.users().find(user) == nullptr) {
    reply.error("User " + user + " does not exist", kNoUser);
    return false;
  }
  if (b.find_vhost(vhost) == nullptr) {
    reply.error("Virtual host " + vhost + " does not exist", kUnavailable);
    return false;
  }
  return true;
}

void finish(ControlReply& reply, const broker::Status& s) {
  if (s) return reply.error(s->text, kSoftware);
  reply.ok();
}

}  // namespace

bool run_topic_permission_verb(ControlContext& ctx, const std::string& verb,
                               const json::object& req, ControlReply& reply) {
  broker::Broker& b = ctx.broker;
  const std::string user = str(req, "user");
  const std::string vhost = str(req, "vhost", "/");

  if (verb == "set_topic_permissions") {
    auth::TopicPermissionSet p{str(req, "write"), str(req, "read")};
    for (const std::string* pattern : {&p.write, &p.read}) {
      auto compiled = auth::ErlangRegex::compile(*pattern);
      if (auto* e = std::get_if<auth::RegexError>(&compiled)) {
        // The pattern is a binary here (a charlist in set_permissions' error), as Elixir shows.
        reply.error(fmt::format("{{:invalid_regexp, \"{}\", {{'{}', {}}}}}", *pattern, e->message,
                                e->offset),
                    kUnavailable);
        return true;
      }
    }
    if (!user_and_vhost_exist(b, user, vhost, reply)) return true;
    finish(reply, b.set_topic_permissions(user, vhost, str(req, "exchange"), std::move(p)));
    return true;
  }
  if (verb == "clear_topic_permissions") {
    if (!user_and_vhost_exist(b, user, vhost, reply)) return true;
    const auto it = req.find("exchange");
    const std::string exchange = str(req, "exchange");
    finish(reply, b.clear_topic_permissions(user, vhost, it == req.end() ? nullptr : &exchange));
    return true;
  }
  if (verb == "list_topic_permissions") {
    if (b.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
      return true;
    }
    for (const auth::TopicPermissionEntry& e : b.list_topic_permissions())
      if (e.vhost == vhost)
        reply.rows.push_back(json::object{{"user", e.user},
                                          {"exchange", e.exchange},
                                          {"write", e.permissions.write},
                                          {"read", e.permissions.read}});
    return true;
  }
  if (verb == "list_user_topic_permissions") {
    if (b.users().find(user) == nullptr) {
      reply.error("{:no_such_user, \"" + user + "\"}", kUnavailable);
      return true;
    }
    for (const auth::TopicPermissionEntry& e : b.list_topic_permissions())
      if (e.user == user)
        reply.rows.push_back(json::object{{"vhost", e.vhost},
                                          {"exchange", e.exchange},
                                          {"write", e.permissions.write},
                                          {"read", e.permissions.read}});
    return true;
  }
  return false;
}

}  // namespace warren::server
