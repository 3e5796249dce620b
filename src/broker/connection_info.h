// What operators see of a client connection and its channels (warrenctl list_connections,
// list_channels, list_consumers): plain values copied out, so listing holds no pointers across
// event-loop turns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/field_table.h"

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

struct ConnectionTraffic {
  uint64_t recv_oct = 0, recv_cnt = 0, send_oct = 0, send_cnt = 0;
  double recv_oct_rate = 0, send_oct_rate = 0;  // bytes/s over the last sample interval
  // The sampler's tick: rates from the counts since the previous tick.
  void sample(uint64_t now_ms, uint64_t previous_ms) {
    if (previous_ms != 0 && now_ms > previous_ms) {
      double seconds = static_cast<double>(now_ms - previous_ms) / 1000.0;
      recv_oct_rate = static_cast<double>(recv_oct - sampled_recv_) / seconds;
      send_oct_rate = static_cast<double>(send_oct - sampled_send_) / seconds;
    }
    sampled_recv_ = recv_oct;
    sampled_send_ = send_oct;
  }

 private:
  uint64_t sampled_recv_ = 0, sampled_send_ = 0;
};

struct ConnectionInfo {
  uint64_t id = 0;
  std::string protocol = "AMQP 0-9-1";  // as RabbitMQ lists it ("MQTT 3.1.1", "STOMP 1.2")
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
  uint64_t connected_at_ms = 0;  // wall clock, milliseconds since the epoch
  // Socket traffic (RabbitMQ's recv_oct/recv_cnt/send_oct/send_cnt: bytes, and reads or writes),
  // with the byte rates of the last statistics interval.
  ConnectionTraffic traffic;
  std::shared_ptr<const FieldTable> client_properties;  // as the client sent them; may be null
};

}  // namespace warren::broker
