#include "broker/message.h"

#include <algorithm>
#include <cstdint>
#include <new>

namespace warren::broker {

MessageRef Message::create(std::string_view exchange, std::string_view routing_key,
                           std::string_view raw_properties, uint64_t body_size) {
  size_t total = sizeof(Message) + exchange.size() + routing_key.size() + raw_properties.size() +
                 static_cast<size_t>(body_size);
  // One block: the header object followed by its variable-length data.
  void* block = ::operator new(total);
  Message* m = ::new (block) Message();
  m->alloc_size_ = static_cast<uint32_t>(std::min<size_t>(total, UINT32_MAX));
  live_bytes_ += m->alloc_size_;
  m->exchange_len_ = static_cast<uint8_t>(exchange.size());
  m->routing_key_len_ = static_cast<uint8_t>(routing_key.size());
  m->properties_len_ = static_cast<uint32_t>(raw_properties.size());
  m->body_size_ = body_size;
  char* p = reinterpret_cast<char*>(m + 1);
  std::memcpy(p, exchange.data(), exchange.size());
  std::memcpy(p + exchange.size(), routing_key.data(), routing_key.size());
  std::memcpy(p + exchange.size() + routing_key.size(), raw_properties.data(), raw_properties.size());
  return MessageRef(m);
}

void Message::destroy(Message* m) {
  live_bytes_ -= m->alloc_size_;
  m->~Message();
  ::operator delete(static_cast<void*>(m));
}

bool Message::append_body(std::string_view chunk) {
  if (chunk.size() > body_size_ - body_filled_) return false;
  std::memcpy(body_ptr() + body_filled_, chunk.data(), chunk.size());
  body_filled_ += chunk.size();
  return true;
}

bool parse_expiration(std::string_view text, int64_t* ms, std::string* reason) {
  // Erlang's list_to_integer: an optional sign and digits, nothing else.
  std::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    *reason = "no_integer";
    return false;
  }
  int64_t v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  if (negative) v = -v;
  constexpr int64_t kMax = 4294967295;
  if (v < 0) {
    *reason = "{value_negative," + std::to_string(v) + "}";
    return false;
  }
  if (v > kMax) {
    *reason = "{value_too_large," + std::to_string(v) + "," + std::to_string(kMax) + "}";
    return false;
  }
  *ms = v;
  return true;
}

}  // namespace warren::broker
