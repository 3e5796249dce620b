// The listeners that plugins switch on and off (rabbitmq_management, rabbitmq_prometheus,
// rabbitmq_mqtt, rabbitmq_web_mqtt, rabbitmq_stomp, rabbitmq_web_stomp): each endpoint opens
// when its plugin is enabled, or when its port was given on the command line ("forced"), and
// closes, with its connections, when the plugin is disabled on the running broker.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace warren::server {

class PluginListeners {
 public:
  struct Endpoint {
    std::string plugin;    // the plugin that turns it on
    std::string name;      // in the log: "<name> listening on <address>:<port>"
    bool forced = false;   // its port was given on the command line: on in any case
    std::function<bool(std::string* error)> open;  // binds and starts accepting
    std::function<void()> stop;  // stops accepting
    std::function<void()> close_connections;  // closes the endpoint's connections
    std::function<std::vector<std::string>()> describe;  // "address:port" of each listener
    bool running = false;
  };

  void add(Endpoint e) { endpoints_.push_back(std::move(e)); }

  // Makes the running endpoints those of `enabled` (plugins with their dependencies) and the
  // forced ones. *started / *stopped: the plugins that were turned on / off (by name, sorted).
  // False with *error when an endpoint cannot listen (the others are applied).
  // log: print "<name> listening on" for what opens (at start-up, log_listening() prints them
  // after the AMQP lines instead).
  bool apply(const std::set<std::string>& enabled, std::vector<std::string>* started,
             std::vector<std::string>* stopped, std::string* error, bool log = true);
  // The plugins running now (the last applied set).
  const std::set<std::string>& running() const { return running_; }
  // Logs "<name> listening on ..." for each running endpoint.
  void log_listening() const;
  void stop_all();
  // Called after each apply() (the management API's listener list is rebuilt from it).
  void set_on_change(std::function<void()> f) { on_change_ = std::move(f); }

 private:
  std::vector<Endpoint> endpoints_;
  std::set<std::string> running_;
  std::function<void()> on_change_;
};

}  // namespace warren::server
