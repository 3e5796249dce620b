// Validation of queue.declare x-arguments with RabbitMQ 3.10's rules and reasons, so a bad
// argument gets the same 406 PRECONDITION_FAILED a RabbitMQ user expects.
#pragma once

#include <string_view>

#include "common/field_table.h"
#include "broker/error.h"

namespace warren::broker {

// 406 "invalid arg 'KEY' for queue 'Q' in vhost 'V': REASON" for the first invalid argument, in
// RabbitMQ's order (the dead-letter exchange's type, the queue type, then a fixed order), and for
// arguments of quorum and stream queues. Arguments RabbitMQ does not know are accepted and kept.
Status validate_queue_arguments(const FieldTable& args, std::string_view queue,
                                std::string_view vhost);

// basic.consume arguments on a classic queue: x-priority must be an integer (of any size),
// x-cancel-on-ha-failover a bool; x-stream-offset belongs to stream queues.
Status validate_consume_arguments(const FieldTable& args, std::string_view queue,
                                  std::string_view vhost);

// RabbitMQ's name for a field value's type ("longstr", "signedint", "long", ...).
std::string_view rabbit_type_name(const FieldValue& v);

}  // namespace warren::broker
