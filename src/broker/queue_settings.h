// The effective settings of a queue, resolved once from its x-arguments (and, with policies, from
// the matching policy through the same fields): what the queue's behaviour reads, instead of
// looking arguments up on the message path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/field_table.h"

namespace warren::broker {

struct PolicyDefinition;

enum class Overflow : uint8_t { kDropHead, kRejectPublish, kRejectPublishDlx };

struct QueueSettings {
  std::optional<uint64_t> message_ttl_ms;      // x-message-ttl
  std::optional<uint64_t> expires_ms;          // x-expires
  std::optional<uint64_t> max_length;          // x-max-length (ready messages)
  std::optional<uint64_t> max_length_bytes;    // x-max-length-bytes (ready body bytes)
  Overflow overflow = Overflow::kDropHead;     // x-overflow
  std::optional<std::string> dead_letter_exchange;     // x-dead-letter-exchange ("" = default)
  std::optional<std::string> dead_letter_routing_key;  // x-dead-letter-routing-key
  uint8_t max_priority = 0;                    // x-max-priority (0: not a priority queue)
  bool single_active_consumer = false;         // x-single-active-consumer

  // Arguments already validated by validate_queue_arguments().
  static QueueSettings from_arguments(const FieldTable& args);

  // The effective settings of a classic queue from its arguments and the definition of the
  // policy that applies to it (null: none), with RabbitMQ 3.10's per-key rule
  // (rabbit_amqqueue_process:process_args_policy):
  //   message-ttl, expires, max-length, max-length-bytes: the lower of the two (res_min);
  //   overflow, dead-letter-exchange, dead-letter-routing-key: the argument if the queue has
  //     it, else the policy's (res_arg), each key on its own;
  //   max-priority, single-active-consumer: arguments only (not policy keys in 3.10).
  static QueueSettings resolve(const FieldTable& args, const PolicyDefinition* policy);
};

}  // namespace warren::broker
