// warrenctl's set_policy / clear_policy / list_policies over VHost's policy API, with rabbitmqctl
// 3.10.8's texts and exit codes (checked against a real node: a missing vhost is a plain 65, a
// validation failure "Validation failed\n\n<reasons>\n" with 69, a missing policy 69).
#include <string>

#include "broker/policy.h"
#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

constexpr int kDataError = 65;
constexpr int kUnavailable = 69;

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}

void no_such_vhost(ControlReply& reply, const std::string& vhost) {
  reply.error("Virtual host '" + vhost + "' does not exist", kDataError, /*plain=*/true);
}

}  // namespace

bool run_policy_verb(ControlContext& ctx, const std::string& verb, const json::object& req,
                     ControlReply& reply) {
  const std::string vhost_name = str(req, "vhost", "/");
  broker::VHost* vhost = ctx.broker.find_vhost(vhost_name);
  if (verb == "set_policy") {
    if (vhost == nullptr) {
      no_such_vhost(reply, vhost_name);
      return true;
    }
    int64_t priority = 0;
    if (auto it = req.find("priority"); it != req.end() && it->value().is_int64())
      priority = it->value().get_int64();
    auto policy = broker::make_policy(str(req, "name"), str(req, "pattern"),
                                      str(req, "definition"), str(req, "apply_to", "all"),
                                      priority);
    if (!policy) {
      const broker::Error& e = policy.error();
      // A definition that is not JSON is reported bare; validation failures under a heading.
      reply.error(e.code == broker::ErrorCode::kCommandInvalid
                      ? e.text
                      : "Validation failed\n\n" + e.text + "\n",
                  kUnavailable);
      return true;
    }
    if (broker::Status s = vhost->set_policy(std::move(*policy))) {
      reply.error(s->text, kUnavailable);
      return true;
    }
    reply.ok();
    return true;
  }
  if (verb == "clear_policy") {
    // rabbitmqctl says the same for a missing policy and a missing vhost.
    broker::Status s = vhost == nullptr ? broker::make_error(broker::ErrorCode::kNotFound,
                                                             "Parameter does not exist")
                                        : vhost->clear_policy(str(req, "name"));
    if (s) {
      reply.error(s->text, kUnavailable);
      return true;
    }
    reply.ok();
    return true;
  }
  if (verb == "list_policies") {
    if (vhost == nullptr) {
      no_such_vhost(reply, vhost_name);
      return true;
    }
    for (const broker::Policy& p : vhost->policies()) {
      reply.rows.push_back(json::object{{"vhost", vhost_name},
                                        {"name", p.name},
                                        {"pattern", p.pattern},
                                        {"apply-to", broker::apply_to_name(p.apply_to)},
                                        {"definition", p.definition_json},
                                        {"priority", p.priority}});
    }
    return true;
  }
  return false;
}

}  // namespace warren::server
