// warrenctl trace_on / trace_off (the firehose, broker/firehose.h). As rabbitmqctl 3.10.8 (which
// calls rabbit_trace:start/stop): any vhost name is accepted, existing or not, and turning on
// what is on (or off what is off) succeeds; the success lines are warrenctl's.
#include <string>

#include "server/control_server.h"

namespace warren::server {

bool run_tracing_verb(ControlContext& ctx, const std::string& verb,
                      const boost::json::object& req, ControlReply& reply) {
  if (verb != "trace_on" && verb != "trace_off") return false;
  std::string vhost = "/";
  if (auto it = req.find("vhost"); it != req.end() && it->value().is_string())
    vhost = std::string(it->value().get_string());
  ctx.broker.set_tracing(vhost, verb == "trace_on");
  reply.ok();
  return true;
}

}  // namespace warren::server
