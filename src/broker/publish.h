// The one publish path every protocol (and dead-lettering inside the broker) goes through:
// VHost::publish routes a complete message, enqueues it, applies flow control and reports what
// the publisher must be told (returned as unroutable, confirmed once durable, or refused).
#pragma once

#include <cstdint>
#include <string_view>

#include "broker/client_identity.h"
#include "broker/message.h"

namespace warren::broker {

class PublisherFlow;
class Queue;

struct PublishRequest {
  MessageRef message;          // complete; its exchange ("" = default) and routing key route it
  bool mandatory = false;      // unroutable: returned to the publisher instead of dropped
  PublisherFlow* flow = nullptr;  // paused while a queue it fed is over its high-water mark
  // Dead-lettering: a routed queue for which accept(accept_context, queue) returns false does not
  // get the message. A plain function pointer: a std::function here cost every publish its
  // construction and destruction.
  bool (*accept)(const void* accept_context, const Queue& q) = nullptr;
  const void* accept_context = nullptr;
  // The client that published (a protocol adapter's channel), for the firehose while the vhost
  // is traced; null for the broker's own publishes (dead-lettering, trace messages), which
  // RabbitMQ does not trace either.
  const ClientIdentity* publisher = nullptr;
};

struct PublishOutcome {
  uint32_t queues = 0;         // queues the message was enqueued on (a direct reply counts)
  uint32_t delayed = 0;        // delayed exchanges that keep it for later (delayed_exchange.h)
  bool returned = false;       // mandatory and unroutable: hand it back (312 NO_ROUTE)
  bool rejected = false;       // a queue refused it (x-overflow reject-publish): confirm nack
  bool journal_failed = false;  // a persistent copy could not be written: confirm nack
  uint64_t journal_seq = 0;    // > 0: durable once the journal synced this seq
  bool dropped_no_exchange = false;  // the exchange was deleted (a tx publish): unroutable
  bool must_wait_for_disk() const { return journal_seq != 0 && !journal_failed; }
  bool nack() const { return rejected || journal_failed; }
};

}  // namespace warren::broker
