// Broker::set_tracing: rabbitmqctl trace_on/trace_off (rabbit_trace:start/stop).
#include <spdlog/spdlog.h>

#include "broker/broker.h"

namespace warren::broker {

void Broker::set_tracing(const std::string& vhost, bool on) {
  // RabbitMQ logs the change, or that there was none, at info.
  if (on == tracing(vhost)) {
    spdlog::info("Tracing is already {} for vhost '{}'", on ? "enabled" : "disabled", vhost);
    return;
  }
  spdlog::info("{} tracing for vhost '{}'", on ? "Enabling" : "Disabling", vhost);
  if (on) {
    traced_vhosts_.insert(vhost);
  } else {
    traced_vhosts_.erase(vhost);
  }
  if (VHost* vh = find_vhost(vhost)) {
    if (on) {
      vh->start_tracing(node_name_);
    } else {
      vh->stop_tracing();
    }
  }
}

}  // namespace warren::broker
