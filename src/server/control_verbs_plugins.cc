// warren-plugins' requests: which plugins run, and apply DATA_DIR/enabled_plugins now (start the
// listeners of newly enabled plugins, stop those of disabled ones).
#include <boost/json.hpp>

#include "common/plugins.h"
#include "server/control_server.h"
#include "server/plugin_listeners.h"

namespace warren::server {

namespace json = boost::json;

bool run_plugin_verb(ControlContext& ctx, const std::string& verb, ControlReply& reply) {
  if (verb != "plugins_running" && verb != "plugins_apply") return false;
  if (ctx.plugins == nullptr) {
    reply.error("this node has no plugin listeners", 70);
    return true;
  }
  if (verb == "plugins_running") {
    for (const std::string& p : ctx.plugins->running()) reply.rows.push_back(json::string(p));
    reply.ok();
    return true;
  }
  std::string error;
  auto enabled = plugins::read_enabled(ctx.data_dir, &error);
  if (!enabled) {
    reply.error(error, 65);
    return true;
  }
  std::vector<std::string> started, stopped;
  const bool applied = ctx.plugins->apply(plugins::expand(*enabled), &started, &stopped, &error);
  for (const std::string& p : started) reply.rows.push_back(json::object{{"started", p}});
  for (const std::string& p : stopped) reply.rows.push_back(json::object{{"stopped", p}});
  if (!applied) {
    reply.error(error, 70);
    return true;
  }
  reply.ok();
  return true;
}

}  // namespace warren::server
