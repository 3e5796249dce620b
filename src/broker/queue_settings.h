// The effective settings of a queue, resolved once from its x-arguments (and, with policies, from
// the matching policy through the same fields): what the queue's behaviour reads, instead of
// looking arguments up on the message path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/field_table.h"

namespace warren::broker {

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
};

}  // namespace warren::broker
