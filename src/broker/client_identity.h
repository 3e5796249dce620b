// Who published or received a message, as RabbitMQ's firehose names them in a trace message's
// headers: the user, the connection's name ("peer:port -> host:port") and the channel number.
#pragma once

#include <cstdint>
#include <string_view>

namespace warren::broker {

// Views of strings owned by the connection, valid while it is open. Protocol adapters keep one
// per channel (or per connection) and point PublishRequest::publisher and
// DeliverySink::identity() at it, so the publish and delivery paths copy a pointer, never the
// strings: only the firehose, while tracing is on, reads them.
struct ClientIdentity {
  std::string_view user;
  std::string_view connection;
  uint16_t channel = 0;
};

}  // namespace warren::broker
