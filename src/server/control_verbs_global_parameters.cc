// warrenctl's global parameter verbs (set_, clear_, list_global_parameters): the broker's API
// (broker_global_parameters.cc) with rabbitmqctl 3.10.8's error texts and exit codes, and its
// listing's columns: name, and value as JSON text (rabbit_runtime_parameters:
// list_global_formatted encodes each value).
#include <string>

#include "broker/global_parameters.h"
#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

constexpr int kUnavailable = 69;  // what rabbitmqctl reports for {:error_string, _}
constexpr int kSoftware = 70;

std::string str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().get_string());
}

void finish(ControlReply& reply, const broker::Status& s) {
  if (!s) return reply.ok();
  // Errors RabbitMQ answers itself ({error_string, ...}: 69); a failed store is the software's.
  reply.error(s->text, s->code == broker::ErrorCode::kInternalError ? kSoftware : kUnavailable);
}

}  // namespace

bool run_global_parameter_verb(ControlContext& ctx, const std::string& verb,
                               const json::object& req, ControlReply& reply) {
  broker::Broker& b = ctx.broker;
  if (verb == "set_global_parameter") {
    // The value arrives as the operator typed it and is parsed here, as parse_set_global does.
    auto value = broker::parse_global_parameter(str(req, "value"));
    if (!value) {
      finish(reply, value.error());
      return true;
    }
    finish(reply, b.set_global_parameter(str(req, "name"), std::move(*value)));
    return true;
  }
  if (verb == "clear_global_parameter") {
    finish(reply, b.clear_global_parameter(str(req, "name")));
    return true;
  }
  if (verb == "list_global_parameters") {
    for (const auto& [name, value] : b.list_global_parameters())
      reply.rows.push_back(json::object{{"name", name}, {"value", broker::rabbit_json_text(value)}});
    return true;
  }
  return false;
}

}  // namespace warren::server
