// MQTT topic names and filters, and RabbitMQ's mapping of them onto AMQP routing keys
// (rabbit_mqtt_util:to_amqp/to_mqtt): "/" <-> ".", "+" <-> "*", "#" stays "#". So an MQTT
// subscription to a/+/c is a binding of a.*.c on the topic exchange, and an AMQP publish with
// routing key a.b.c reaches it as topic a/b/c.
#pragma once

#include <string>
#include <string_view>

namespace warren::mqtt {

std::string topic_to_routing_key(std::string_view topic);
std::string routing_key_to_topic(std::string_view routing_key);

// A filter's wildcards stand alone in their level, and "#" only last (3.1.1 section 4.7.1).
bool valid_topic_filter(std::string_view filter);
// Whether topic name `topic` matches `filter` as MQTT defines it: "+" one level, "#" this
// level and every one below (the parent too), and a wildcard first never matches a topic that
// starts with "$".
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace warren::mqtt
