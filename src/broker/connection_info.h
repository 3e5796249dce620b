// What operators see of a client connection and its channels (warrenctl list_connections,
// list_channels, list_consumers): plain values copied out, so listing holds no pointers across
// event-loop turns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace warren::broker {

class DeliverySink;
class ObjectStats;

struct ChannelInfo {
  uint16_t number = 0;
  size_t consumer_count = 0;
  size_t messages_unacknowledged = 0;
  uint32_t prefetch_count = 0;
  bool confirm = false;
  bool transactional = false;
  const DeliverySink* sink = nullptr;  // matches Consumer::sink, to name a consumer's channel
  // The channel's counters and samples: valid while the connection is, i.e. within the event-loop
  // turn that took this info.
  const ObjectStats* stats = nullptr;
};

struct ConnectionInfo {
  uint64_t id = 0;
  std::string user, vhost;
  std::string peer_host, host;  // host: the broker's address the client connected to
  uint16_t peer_port = 0, port = 0;
  std::string state;  // "starting", "running", "closing" (RabbitMQ's names)
  std::string client_name;  // client property connection_name, if sent
  std::string auth_mechanism;  // PLAIN, AMQPLAIN or EXTERNAL
  bool ssl = false;
  uint16_t channel_max = 0, heartbeat = 0;
  uint32_t frame_max = 0;
  std::vector<ChannelInfo> channels;
};

}  // namespace warren::broker
