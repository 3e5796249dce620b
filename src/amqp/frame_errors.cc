#include "amqp/frame_errors.h"

#include <fmt/format.h>

namespace warren::amqp {

namespace {

// RabbitMQ prints at most 16 bytes of a bad frame's payload (payload_snippet/1).
constexpr size_t kSnippetMax = 16;

// The printable set of Erlang's default Latin-1 printable range, and the escapes ~p uses.
const char* escape(uint8_t c) {
  switch (c) {
    case '\b': return "\\b";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\v': return "\\v";
    case '\f': return "\\f";
    case '\r': return "\\r";
    case 27: return "\\e";
    case '"': return "\\\"";
    case '\\': return "\\\\";
    default: return nullptr;
  }
}

bool printable(uint8_t c) {
  return (c >= 32 && c <= 126) || c >= 160 || (c >= '\b' && c <= '\r') || c == 27;
}

// "all octets = <<...>>" or "first 16 octets = <<...>>", as payload_snippet/1 and ~p give it.
std::string snippet(uint8_t type, std::string_view payload) {
  bool all = payload.size() <= kSnippetMax;
  return fmt::format("type {}, {} octets = {}", type, all ? "all" : "first 16",
                     erlang_binary_pretty(payload.substr(0, kSnippetMax)));
}

}  // namespace

std::string erlang_binary(std::string_view bytes) {
  std::string out = "<<";
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(static_cast<uint8_t>(bytes[i]));
  }
  out += ">>";
  return out;
}

std::string erlang_binary_pretty(std::string_view bytes) {
  if (bytes.empty()) return "<<>>";
  for (char c : bytes)
    if (!printable(static_cast<uint8_t>(c))) return erlang_binary(bytes);
  std::string out = "<<\"";
  for (char c : bytes) {
    if (const char* e = escape(static_cast<uint8_t>(c))) {
      out += e;
    } else {
      out += c;
    }
  }
  out += "\">>";
  return out;
}

AmqpError unknown_frame(const Frame& f) {
  return amqp_error(kFrameError, "{}: unknown_frame", snippet(f.type, f.payload));
}

AmqpError unexpected_frame(const Frame& f) {
  return amqp_error(kUnexpectedFrame, "{}", snippet(f.type, f.payload));
}

AmqpError frame_too_large(uint8_t type, uint32_t size, uint32_t frame_max) {
  // RabbitMQ shows no payload here and names the largest payload a frame_max frame can carry.
  return amqp_error(kFrameError, "{}: {{frame_too_large,{},{}}}", snippet(type, {}), size,
                    frame_max - kFrameOverhead);
}

AmqpError bad_frame_end(const Frame& f, uint8_t end) {
  return amqp_error(kFrameError, "{}: {{invalid_frame_end_marker,{}}}", snippet(f.type, f.payload),
                    end);
}

AmqpError cannot_decode(uint16_t class_id, uint16_t method_id, std::string_view args) {
  // Reply texts are cut at 255 bytes, which 128 bytes (at least two characters each) pass.
  AmqpError e = amqp_error(kFrameError, "cannot decode {}", erlang_binary(args.substr(0, 128)));
  e.class_id = class_id;
  e.method_id = method_id;
  return e;
}

AmqpError malformed_utf8() { return amqp_error(kFrameError, "Malformed UTF-8 in shortstr"); }

}  // namespace warren::amqp
