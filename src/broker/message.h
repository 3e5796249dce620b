// A published message: exchange, routing key, raw content-header properties and body in ONE
// allocation, shared by reference by every queue it is routed to (fanout costs a refcount, not a
// copy). Properties are kept as received so they pass through byte-exact.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "broker/ref.h"

namespace warren::broker {

class Message;
using MessageRef = Ref<Message>;

// The per-message TTL in an expiration property, as RabbitMQ 3.10 parses it: a decimal integer
// of milliseconds from 0 to 315360000000 (ten years). On failure, RabbitMQ's reason
// ("no_integer", "{leftover_string,\"abc\"}", "{value_negative,-1}",
// "{value_too_large,315360000001}") for the 406 text "invalid expiration '<text>': <reason>".
bool parse_expiration(std::string_view text, int64_t* ms, std::string* reason);

class Message {
 public:
  // Allocates a message with room for a body of body_size bytes, filled later by append_body().
  static MessageRef create(std::string_view exchange, std::string_view routing_key,
                           std::string_view raw_properties, uint64_t body_size);
  static void destroy(Message* m);

  std::string_view exchange() const { return {data(), exchange_len_}; }
  std::string_view routing_key() const { return {data() + exchange_len_, routing_key_len_}; }
  std::string_view raw_properties() const {
    return {data() + exchange_len_ + routing_key_len_, properties_len_};
  }
  std::string_view body() const { return {body_ptr(), static_cast<size_t>(body_filled_)}; }
  uint64_t body_size() const { return body_size_; }
  // Exchange, routing key, properties and body back to back: what the journal writes.
  std::string_view packed() const {
    return {data(), exchange_len_ + routing_key_len_ + properties_len_ + static_cast<size_t>(body_filled_)};
  }
  bool complete() const { return body_filled_ == body_size_; }
  // Copies a body frame's payload in; false if it would overflow the announced size.
  bool append_body(std::string_view chunk);

  // Bytes held by all live messages (single broker thread): input to the memory alarm.
  static uint64_t live_bytes() { return live_bytes_; }

  uint8_t delivery_mode = 0;  // 2 = persistent
  uint8_t priority = 0;
  // MQTT: published with the RETAIN flag (for a subscription's Retain As Published).
  bool retain = false;
  // The id of the publishing connection, truncated (for MQTT's No Local); 0 = unknown. Both
  // live in the padding before expiration_ms, and neither survives a restart.
  uint32_t publisher_tag = 0;
  int64_t expiration_ms = -1;  // the per-message TTL (expiration property); -1 = none

 private:
  template <class>
  friend class Ref;
  Message() = default;
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  char* body_ptr() const {
    return const_cast<char*>(data()) + exchange_len_ + routing_key_len_ + properties_len_;
  }

  static inline uint64_t live_bytes_ = 0;
  uint32_t refs_ = 0;
  uint32_t alloc_size_ = 0;  // header included; saturates at 4 GiB (bodies are capped far lower)
  uint8_t exchange_len_ = 0;
  uint8_t routing_key_len_ = 0;
  uint32_t properties_len_ = 0;
  uint64_t body_size_ = 0;
  uint64_t body_filled_ = 0;
};

}  // namespace warren::broker
