// Global runtime parameters (RabbitMQ's rabbit_runtime_parameters with a name and no vhost or
// component: rabbitmqctl set_global_parameter, /api/global-parameters, "global_parameters" in
// definitions). Each is a name and any JSON value, kept parsed so that code reading one (the
// MQTT adapter) does not parse text on its path. Not thread-safe: the broker's event loop owns
// it, so changing a parameter takes no lock.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "broker/error.h"

namespace warren::broker {

class GlobalParameters {
 public:
  using Map = std::map<std::string, boost::json::value, std::less<>>;

  // Null when not set. The value stays where it is until the parameter is set again (then it is
  // replaced in place) or cleared (then the pointer dangles): look it up when needed rather
  // than keep it across event-loop turns.
  const boost::json::value* find(std::string_view name) const;
  // Adds or replaces; the value is kept in canonical form (canonical_json).
  void put(std::string name, boost::json::value value);
  bool erase(std::string_view name);  // false when it was not set
  const Map& all() const { return values_; }  // by name

 private:
  Map values_;
};

// A value as RabbitMQ keeps it: it stores a JSON object as an Erlang map (a proplist at the top
// level) and prints its keys sorted, so the same value with every object's keys in order.
boost::json::value canonical_json(boost::json::value v);

// The JSON text of a value as RabbitMQ prints it (rabbit_json:encode, the value column of
// rabbitmqctl list_global_parameters): compact, and floats as Erlang's shortest form ("1.5",
// "1.0e3", "100.0"), not Boost.JSON's ("1.5E0").
std::string rabbit_json_text(const boost::json::value& v);

// The JSON text rabbitmqctl set_global_parameter takes, parsed as rabbit_runtime_parameters:
// parse_set_global does; what is not JSON is RabbitMQ's "JSON decoding error. Reason: badarg"
// (kPreconditionFailed).
OpResult<boost::json::value> parse_global_parameter(std::string_view text);

}  // namespace warren::broker
