#include "server/plugin_listeners.h"

#include <spdlog/spdlog.h>

namespace warren::server {

bool PluginListeners::apply(const std::set<std::string>& enabled,
                            std::vector<std::string>* started, std::vector<std::string>* stopped,
                            std::string* error, bool log) {
  bool ok = true;
  for (Endpoint& e : endpoints_) {
    const bool want = e.forced || enabled.count(e.plugin) > 0;
    if (want && !e.running) {
      std::string why;
      if (!e.open(&why)) {
        if (error->empty()) *error = why;
        ok = false;
        continue;
      }
      e.running = true;
      if (log)
        for (const std::string& where : e.describe())
          spdlog::info("{} listening on {}", e.name, where);
    } else if (!want && e.running) {
      e.stop();
      e.close_connections();
      e.running = false;
      spdlog::info("{} listener stopped (plugin {} disabled)", e.name, e.plugin);
    }
  }
  for (const std::string& p : enabled)
    if (!running_.count(p)) started->push_back(p);
  for (const std::string& p : running_)
    if (!enabled.count(p)) stopped->push_back(p);
  running_ = enabled;
  if (on_change_) on_change_();
  return ok;
}

void PluginListeners::log_listening() const {
  for (const Endpoint& e : endpoints_)
    if (e.running)
      for (const std::string& where : e.describe())
        spdlog::info("{} listening on {}", e.name, where);
}

void PluginListeners::stop_all() {
  for (Endpoint& e : endpoints_) {
    if (!e.running) continue;
    e.stop();
    e.running = false;
  }
}

}  // namespace warren::server
