// Dead-lettering as RabbitMQ 3.x does it: a message that expired, was rejected without requeue
// or was pushed out by a length limit is republished to the queue's dead-letter exchange with its
// routing key (or x-dead-letter-routing-key), an updated x-death header and the x-first-death-*
// headers, and without its expiration. Death cycles without a rejection are broken by not
// routing to a queue the message already died in.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "broker/message.h"
#include "broker/queue.h"

namespace warren::broker {

class VHost;

std::string_view reason_name(DeadLetterReason reason);

// The message as it is republished: properties rewritten (x-death, x-first-death-*, no
// expiration, CC dropped when a dead-letter routing key replaces the routing keys).
MessageRef make_dead_letter(const Message& m, DeadLetterReason reason, std::string_view queue,
                            std::string_view dlx, const std::optional<std::string>& dlrk,
                            uint64_t now_seconds);

// Whether routing a dead letter (already carrying its new x-death) to `queue` closes a cycle
// with no rejection in it.
bool is_death_cycle(const Message& dead_letter, std::string_view queue);

// Builds the dead letter and publishes it through the vhost's publish path.
void dead_letter_publish(VHost& vhost, const Message& m, DeadLetterReason reason,
                         std::string_view queue, std::string_view dlx,
                         const std::optional<std::string>& dlrk);

}  // namespace warren::broker
