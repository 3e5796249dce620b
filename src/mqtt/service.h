// What the MQTT connections of one broker share: the broker core, the settings, the retained
// messages, and which connection holds each client id (a second CONNECT with the same id takes
// the session over, as MQTT 3.1.1 section 3.1.4 asks).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/broker.h"
#include "mqtt/retained_store.h"
#include "mqtt/settings.h"

namespace warren::mqtt {

class Connection;

class Service {
 public:
  Service(broker::Broker& broker, Settings settings, std::unique_ptr<RetainedStore> retained)
      : broker_(broker), settings_(std::move(settings)), retained_(std::move(retained)) {}

  broker::Broker& broker() { return broker_; }
  const Settings& settings() const { return settings_; }
  RetainedStore& retained() { return *retained_; }

  // Makes c the holder of (vhost, client id); returns the connection that held it (to be
  // closed by the caller), or null.
  Connection* claim(std::string_view vhost, std::string_view client_id, Connection* c);
  // c no longer holds the id (it closed); nothing happens if another connection took it over.
  void release(std::string_view vhost, std::string_view client_id, const Connection* c);

 private:
  static std::string key(std::string_view vhost, std::string_view client_id);

  broker::Broker& broker_;
  Settings settings_;
  std::unique_ptr<RetainedStore> retained_;
  std::unordered_map<std::string, Connection*> sessions_;
};

}  // namespace warren::mqtt
