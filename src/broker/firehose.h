// RabbitMQ's firehose tracer (rabbit_trace) for one vhost: while tracing is on (rabbitmqctl
// trace_on), a copy of every client publish and of every delivery and basic.get in the vhost is
// published to its amq.rabbitmq.trace exchange (topic, internal), with routing key
// "publish.<exchange>" or "deliver.<queue>", the original body, and headers saying what
// happened: exchange_name, routing_keys, properties (the original's, as a table), node, and then
// for a publish vhost, connection, channel, user, routed_queues, for a delivery redelivered,
// vhost, connection, channel, user. Names, order and AMQP types are RabbitMQ 3.10.8's (checked
// against a real node). A trace message is transient and carries no property but its headers.
//
// A VHost owns one while tracing is on and none while it is off, so the publish and delivery
// paths pay one pointer test when off.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/client_identity.h"
#include "broker/message.h"

namespace warren::broker {

class Queue;
class VHost;
struct QueuedMessage;

class Firehose {
 public:
  static constexpr std::string_view kExchange = "amq.rabbitmq.trace";

  // node: the node name the trace messages carry in their "node" header (warren@<hostname>).
  Firehose(VHost& vhost, std::string node) : vhost_(vhost), node_(std::move(node)) {}

  // A client published msg; routed: the queues routing matched (for a named exchange; the
  // default exchange names its queue by the routing key, as RabbitMQ reports it, whether the
  // queue exists or not).
  void published(const Message& msg, const std::vector<Queue*>& routed,
                 const ClientIdentity& publisher);
  // q handed m to a consumer or to basic.get; a null receiver is traced with empty names and
  // channel 0.
  void delivered(const Queue& q, const QueuedMessage& m, const ClientIdentity* receiver);

  // The routing keys and header table bodies of trace messages (for tests and the two calls
  // above): the headers table's entries, without its length.
  static std::string publish_headers(const Message& msg, std::string_view node,
                                     std::string_view vhost, const ClientIdentity& publisher,
                                     const std::vector<std::string_view>& routed_queues);
  static std::string deliver_headers(const Message& msg, std::string_view node,
                                     std::string_view vhost, bool redelivered,
                                     const ClientIdentity& receiver);

 private:
  // Publishes the trace message "<kind>.<name>" with msg's body through the trace exchange.
  void trace(std::string_view kind, std::string_view name, const Message& msg,
             const std::string& headers);

  VHost& vhost_;
  std::string node_;
};

}  // namespace warren::broker
