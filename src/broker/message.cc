#include "broker/message.h"

#include <algorithm>
#include <cstdint>
#include <new>
#include <string>

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

namespace {

// An Erlang string as ~p prints it: in double quotes with escapes when every byte is printable
// (latin1), else as a list of integers.
std::string erlang_string(std::string_view s) {
  auto printable = [](unsigned char c) {
    return (c >= 32 && c <= 126) || c >= 160 || (c >= 8 && c <= 13) || c == 27;
  };
  if (!std::all_of(s.begin(), s.end(), printable)) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(static_cast<unsigned char>(s[i]));
    }
    return out + "]";
  }
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case 27: out += "\\e"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

// {Tag,Value} as ~p prints it at `column`: on one line when it ends by column 78 (measured on
// RabbitMQ 3.10.8: a term ending at column 79 or 80 is wrapped), else with the value on the next
// line, under the tag.
std::string erlang_pair(std::string_view tag, const std::string& value, size_t column) {
  std::string flat = "{" + std::string(tag) + "," + value + "}";
  if (column + flat.size() <= 78) return flat;
  return "{" + std::string(tag) + ",\n" + std::string(column + 1, ' ') + value + "}";
}

}  // namespace

bool parse_expiration(std::string_view text, int64_t* ms, std::string* reason) {
  // As RabbitMQ 3.10 (rabbit_basic:parse_expiration): string:to_integer (an optional sign, then
  // digits, then nothing), then rabbit_misc:check_expiry (0 to ten years in milliseconds).
  // Reasons are printed with ~p after "invalid expiration '<text>': ".
  size_t column = 23 + text.size();
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) {
    negative = rest[0] == '-';
    rest.remove_prefix(1);
  }
  size_t n_digits = 0;
  while (n_digits < rest.size() && rest[n_digits] >= '0' && rest[n_digits] <= '9') ++n_digits;
  if (n_digits == 0) {
    *reason = "no_integer";
    return false;
  }
  std::string_view digits = rest.substr(0, n_digits);
  if (n_digits < rest.size()) {
    *reason = erlang_pair("leftover_string", erlang_string(rest.substr(n_digits)), column);
    return false;
  }
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  constexpr int64_t kMax = 315'360'000'000;
  bool zero = digits == "0";
  if (negative && !zero) {
    *reason = erlang_pair("value_negative", "-" + std::string(digits), column);
    return false;
  }
  if (digits.size() > 12 || std::stoll(std::string(digits)) > kMax) {
    *reason = erlang_pair("value_too_large", std::string(digits), column);
    return false;
  }
  *ms = std::stoll(std::string(digits));
  return true;
}

}  // namespace warren::broker
