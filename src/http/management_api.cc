#include "http/management_api.h"

#include "http/api_call.h"

namespace warren::http {

namespace bhttp = boost::beast::http;

void ManagementApi::handle(const Request& req, const Peer& peer, Response& r,
                           Responder& responder) {
  auto target = parse_target(req.target());
  if (!target || target->segments.empty()) return not_found(r);

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
  if (user != nullptr && !peer.loopback && broker_.users().loopback_only(user->name))
    user = nullptr;  // loopback_users, as for AMQP
  if (user == nullptr) {
    // The web UI asks with X-Requested-With: a challenge would make the browser open its own
    // login dialog over the page's form.
    auto xhr = req.find("x-requested-with");
    if (xhr == req.end() || xhr->value() != "XMLHttpRequest")
      r.set(bhttp::field::www_authenticate, "Basic realm=\"RabbitMQ Management\"");
    return reply_error(r, bhttp::status::unauthorized, "not_authorized", "Login failed");
  }
  ApiLoop loop{io_, worker_};
  ApiCall call{broker_, loop, responder, info_, req, *target, *user, false, false, r};
  call.administrator = has_tag(*user, "administrator");
  call.monitoring = call.administrator || has_tag(*user, "monitoring");
  if (!call.monitoring && !has_tag(*user, "management") && !has_tag(*user, "policymaker"))
    return reply_error(r, bhttp::status::unauthorized, "not_authorised", "Not management user");

  const std::string& what = target->segments[0];
  if ((what == "exchanges" || what == "queues") && handle_messages(call)) return;
  if (what == "health" || what == "healthchecks") return handle_health(call);
  if (what == "overview" || what == "whoami" || what == "aliveness-test" ||
      what == "nodes" || what == "extensions" || what == "cluster-name")
    return handle_overview(call);
  const auto& seg = target->segments;
  if (what == "topic-permissions" ||
      ((what == "users" || what == "vhosts") && seg.size() == 3 && seg[2] == "topic-permissions"))
    return handle_topic_permissions(call);
  if (what == "global-parameters") return handle_global_parameters(call);
  if (what == "vhosts") return handle_vhosts(call);
  if (what == "users") return handle_users(call);
  if (what == "queues") return handle_queues(call);
  if (what == "exchanges") return handle_exchanges(call);
  if (what == "bindings") return handle_bindings(call);
  if (what == "permissions" || what == "policies") return handle_permissions(call);
  if (what == "definitions") return handle_definitions(call);
  if (what == "connections" || what == "channels" || what == "consumers")
    return handle_connections(call);
  not_found(r);
}

}  // namespace warren::http
