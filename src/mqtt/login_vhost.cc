#include "mqtt/login_vhost.h"

#include <boost/json.hpp>

namespace warren::mqtt {

namespace {

// The string `key` maps to in a JSON object, if any.
std::optional<std::string> mapped(const boost::json::value* mapping, std::string_view key) {
  if (mapping == nullptr || !mapping->is_object()) return std::nullopt;
  const boost::json::object& o = mapping->get_object();
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::nullopt;
  return std::string(it->value().get_string());
}

// The "vhost:user" form of a user name (split at the last colon), unless colons are ignored.
std::optional<LoginVhost> vhost_in_user_name(std::string_view name, const Settings& s) {
  if (s.ignore_colons_in_username) return std::nullopt;
  const size_t colon = name.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return LoginVhost{std::string(name.substr(0, colon)), std::string(name.substr(colon + 1)),
                    "vhost in user name"};
}

}  // namespace

LoginVhost login_vhost(std::string_view name, const std::string* certificate_name, uint16_t port,
                       const Settings& settings, const boost::json::value* port_mapping,
                       const boost::json::value* certificate_mapping) {
  const std::string port_key = std::to_string(port);
  auto configured = [&] { return LoginVhost{settings.vhost, std::string(name), "mqtt.vhost"}; };
  if (certificate_name != nullptr) {
    if (auto v = mapped(certificate_mapping, *certificate_name))
      return {std::move(*v), std::string(name), "client certificate to vhost mapping"};
    if (auto v = mapped(port_mapping, port_key))
      return {std::move(*v), std::string(name), "port to vhost mapping"};
    return vhost_in_user_name(name, settings).value_or(configured());
  }
  if (auto v = vhost_in_user_name(name, settings)) return std::move(*v);
  if (auto v = mapped(port_mapping, port_key))
    return {std::move(*v), std::string(name), "port to vhost mapping"};
  return configured();
}

}  // namespace warren::mqtt
