// Which vhost an MQTT login goes to, as RabbitMQ's rabbit_mqtt_processor:get_vhost picks it:
// - without a certificate login: the user name's "vhost:user" prefix (split at the last colon,
//   unless mqtt.ignore_colons_in_username); else the global parameter
//   mqtt_port_to_vhost_mapping ({"1883": "vhost", ...}) for the port the client connected to;
//   else mqtt.vhost;
// - with one (mqtt.ssl_cert_login and a verified certificate): the global parameter
//   mqtt_default_vhosts ({"<certificate name>": "vhost", ...}); else the port mapping; else
//   the user name's prefix or mqtt.vhost.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "mqtt/settings.h"

namespace warren::mqtt {

constexpr std::string_view kPortToVhostMapping = "mqtt_port_to_vhost_mapping";
constexpr std::string_view kCertificateToVhostMapping = "mqtt_default_vhosts";

struct LoginVhost {
  std::string vhost;
  std::string user;
  std::string_view picked_by;  // for the log: how the vhost was chosen
};

// name: the login's user name; certificate_name: the certificate's name under
// mqtt.ssl_cert_login (null: none); port: the local port of the connection; the mappings: the
// global parameters' values (null: not set; anything but a JSON object maps nothing).
LoginVhost login_vhost(std::string_view name, const std::string* certificate_name, uint16_t port,
                       const Settings& settings, const boost::json::value* port_mapping,
                       const boost::json::value* certificate_mapping);

}  // namespace warren::mqtt
