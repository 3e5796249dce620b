// warrenctl's verbs over users, vhosts, permissions and vhost limits: the broker's access API
// (broker_access.cc) with rabbitmqctl 3.10.8's error texts and exit codes (captured in
// tests/integration/data/rabbitmqctl-3.10.8-outputs.txt). The existence checks come first here
// because rabbitmqctl words them differently from the AMQP-side texts the broker returns.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

// rabbitmqctl's exit codes (sysexits).
constexpr int kDataError = 65;     // an unknown vhost in a listing or delete_vhost
constexpr int kNoUser = 67;        // EX_NOUSER
constexpr int kUnavailable = 69;   // an unknown vhost/user where rabbitmqctl reports {:no_such_*}
constexpr int kSoftware = 70;      // the operation itself failed

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}

json::object permission_row(std::string_view key, std::string_view value,
                            const auth::PermissionSet& p) {
  return json::object{
      {key, value}, {"configure", p.configure}, {"write", p.write}, {"read", p.read}};
}

bool user_exists(ControlContext& ctx, const std::string& user) {
  return ctx.broker.users().find(user) != nullptr;
}

void finish(ControlReply& reply, const broker::Status& s) {
  if (s) return reply.error(s->text, kSoftware);
  reply.ok();
}

// set_vhost_limits' JSON: {"max-connections": N, "max-queues": N}; negative = unlimited.
// Unknown keys first, then values, with rabbit_vhost_limit's texts (RabbitMQ 3.10.8).
bool parse_limits(const json::value& v, broker::VHostLimits* out, std::string* error) {
  if (!v.is_object()) {
    *error = "JSON decoding error. Reason: badarg";
    return false;
  }
  std::string unknown;
  for (const auto& [key, value] : v.get_object())
    if (key != "max-connections" && key != "max-queues")
      unknown += fmt::format("{}{{<<\"{}\">>,{}}}", unknown.empty() ? "" : ",",
                             std::string_view(key), json::serialize(value));
  if (!unknown.empty()) {
    *error = "Validation failed\n\nUnrecognised terms [" + unknown + "] in limits\n";
    return false;
  }
  for (const auto& [key, value] : v.get_object()) {
    if (!value.is_int64() && !value.is_uint64()) {
      std::string shown = value.is_string()
                              ? fmt::format("<<\"{}\">>", std::string_view(value.get_string()))
                              : json::serialize(value);
      *error = fmt::format("Validation failed\n\n{} should be a number, actually was {}\n",
                           std::string_view(key), shown);
      return false;
    }
    int64_t n = value.is_int64() ? value.get_int64() : static_cast<int64_t>(value.get_uint64());
    if (n < 0) n = -1;
    (key == "max-connections" ? out->max_connections : out->max_queues) = n;
  }
  return true;
}

}  // namespace

bool run_tenancy_verb(ControlContext& ctx, const std::string& verb, const json::object& req,
                      ControlReply& reply) {
  broker::Broker& b = ctx.broker;
  const std::string user = str(req, "user");
  const std::string vhost = str(req, "vhost", "/");

  if (verb == "add_user") {
    if (user_exists(ctx, user)) {
      reply.error("User \"" + user + "\" already exists", kSoftware);
      return true;
    }
    finish(reply, b.add_user(user, str(req, "password")));
    return true;
  }
  if (verb == "delete_user" || verb == "change_password" || verb == "set_user_tags") {
    if (!user_exists(ctx, user)) {
      reply.error("User \"" + user + "\" does not exist", kNoUser);
      return true;
    }
    if (verb == "delete_user") {
      finish(reply, b.delete_user(user));
    } else if (verb == "change_password") {
      finish(reply, b.change_password(user, str(req, "password")));
    } else {
      std::vector<std::string> tags;
      if (auto it = req.find("tags"); it != req.end() && it->value().is_array())
        for (const json::value& t : it->value().get_array())
          if (t.is_string()) tags.emplace_back(t.get_string());
      finish(reply, b.set_user_tags(user, std::move(tags)));
    }
    return true;
  }
  if (verb == "clear_password") {
    if (!user_exists(ctx, user)) {
      reply.error("{:no_such_user, \"" + user + "\"}", kUnavailable);
      return true;
    }
    finish(reply, b.clear_password(user));
    return true;
  }
  if (verb == "add_vhost") {
    finish(reply, b.create_vhost(vhost));  // an existing vhost is success, as rabbitmqctl
    return true;
  }
  if (verb == "delete_vhost") {
    if (b.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
      return true;
    }
    finish(reply, b.delete_vhost(vhost));
    return true;
  }
  if (verb == "set_permissions" || verb == "clear_permissions") {
    if (b.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host " + vhost + " does not exist", kUnavailable);
      return true;
    }
    if (!user_exists(ctx, user)) {
      reply.error("User " + user + " does not exist", kNoUser);
      return true;
    }
    if (verb == "clear_permissions") {
      finish(reply, b.clear_permissions(user, vhost));
      return true;
    }
    auth::PermissionSet p{str(req, "configure"), str(req, "write"), str(req, "read")};
    for (const std::string* pattern : {&p.configure, &p.write, &p.read}) {
      auto compiled = auth::ErlangRegex::compile(*pattern);
      if (auto* e = std::get_if<auth::RegexError>(&compiled)) {
        // rabbitmqctl prints the Erlang error term the way Elixir inspects it.
        reply.error(fmt::format("{{:invalid_regexp, '{}', {{'{}', {}}}}}", *pattern, e->message,
                                e->offset),
                    kUnavailable);
        return true;
      }
    }
    finish(reply, b.set_permissions(user, vhost, std::move(p)));
    return true;
  }
  if (verb == "list_permissions") {
    if (b.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
      return true;
    }
    for (const broker::UserPermissionEntry& e : b.list_permissions(vhost))
      reply.rows.push_back(permission_row("user", e.user, e.permissions));
    return true;
  }
  if (verb == "list_user_permissions") {
    if (!user_exists(ctx, user)) {
      reply.error("{:no_such_user, \"" + user + "\"}", kUnavailable);
      return true;
    }
    for (const broker::UserPermissionEntry& e : b.list_user_permissions(user))
      reply.rows.push_back(permission_row("vhost", e.vhost, e.permissions));
    return true;
  }
  if (verb == "set_vhost_limits") {
    if (b.find_vhost(vhost) == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
      return true;
    }
    broker::VHostLimits limits;
    std::string error;
    auto it = req.find("limits");
    if (it == req.end() || !parse_limits(it->value(), &limits, &error)) {
      reply.error(error.empty() ? "JSON decoding error. Reason: badarg" : error, kUnavailable);
      return true;
    }
    finish(reply, b.set_vhost_limits(vhost, limits));
    return true;
  }
  if (verb == "list_vhost_limits") {
    broker::VHost* v = b.find_vhost(vhost);
    if (v == nullptr) {
      reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
      return true;
    }
    json::object limits;
    if (v->max_connections >= 0) limits["max-connections"] = v->max_connections;
    if (v->max_queues >= 0) limits["max-queues"] = v->max_queues;
    if (!limits.empty()) reply.rows.push_back(std::move(limits));
    return true;
  }
  return false;
}

}  // namespace warren::server
