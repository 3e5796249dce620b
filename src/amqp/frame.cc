#include "amqp/frame.h"

#include <cstring>

namespace warren::amqp {

ParseStatus parse_frame(std::string_view data, uint32_t max_payload, Frame* frame, size_t* consumed) {
  if (data.size() < 7) return ParseStatus::kNeedMore;
  Reader r(data);
  frame->type = r.u8();
  frame->channel = r.u16();
  uint32_t size = r.u32();
  if (size > max_payload) return ParseStatus::kTooLarge;
  if (data.size() < size_t(size) + kFrameOverhead) return ParseStatus::kNeedMore;
  frame->payload = data.substr(7, size);
  if (static_cast<uint8_t>(data[7 + size]) != uint8_t(kFrameEnd)) return ParseStatus::kBadFrameEnd;
  *consumed = size_t(size) + kFrameOverhead;
  return ParseStatus::kFrame;
}

void write_content_header(std::string& out, uint16_t channel, uint64_t body_size,
                          std::string_view raw_properties) {
  Writer w(out);
  w.u8(kFrameHeader);
  w.u16(channel);
  w.u32(static_cast<uint32_t>(12 + raw_properties.size()));
  w.u16(kBasicClass);
  w.u16(0);  // weight
  w.u64(body_size);
  w.bytes(raw_properties);
  w.u8(kFrameEnd);
}

void write_body(std::string& out, uint16_t channel, std::string_view body, uint32_t frame_max) {
  size_t chunk = frame_max == 0 ? body.size() : frame_max - kFrameOverhead;
  if (chunk == 0) chunk = body.size();
  Writer w(out);
  for (size_t off = 0; off < body.size(); off += chunk) {
    size_t n = std::min(chunk, body.size() - off);
    w.u8(kFrameBody);
    w.u16(channel);
    w.u32(static_cast<uint32_t>(n));
    w.bytes(body.substr(off, n));
    w.u8(kFrameEnd);
  }
}

namespace {

// Big-endian stores at a cursor into a buffer already sized for them.
struct Cursor {
  char* p;
  void u8(uint8_t v) { *p++ = static_cast<char>(v); }
  void u16(uint16_t v) {
    p[0] = char(v >> 8);
    p[1] = char(v);
    p += 2;
  }
  void u32(uint32_t v) {
    p[0] = char(v >> 24);
    p[1] = char(v >> 16);
    p[2] = char(v >> 8);
    p[3] = char(v);
    p += 4;
  }
  void u64(uint64_t v) {
    u32(uint32_t(v >> 32));
    u32(uint32_t(v));
  }
  void bytes(std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void shortstr(std::string_view s) {  // truncated at 255 bytes, as Writer::shortstr
    size_t n = s.size() > 255 ? 255 : s.size();
    u8(static_cast<uint8_t>(n));
    bytes(s.substr(0, n));
  }
};

size_t shortstr_size(std::string_view s) { return 1 + (s.size() > 255 ? 255 : s.size()); }

}  // namespace

void write_delivery(std::string& out, uint16_t channel, const BasicDeliver& m,
                    std::string_view raw_properties, std::string_view body, uint32_t frame_max) {
  size_t method_size = 4 + shortstr_size(m.consumer_tag) + 8 + 1 + shortstr_size(m.exchange) +
                       shortstr_size(m.routing_key);
  size_t header_size = 12 + raw_properties.size();
  size_t chunk = frame_max == 0 ? body.size() : frame_max - kFrameOverhead;
  // A body in one frame (the common case) gets its frame's 7 leading bytes here too.
  bool one_body_frame = !body.empty() && body.size() <= chunk;
  size_t fixed = method_size + header_size + 2 * kFrameOverhead + (one_body_frame ? 7 : 0);
  size_t at = out.size();
  out.resize(at + fixed);
  Cursor c{out.data() + at};
  c.u8(kFrameMethod);
  c.u16(channel);
  c.u32(static_cast<uint32_t>(method_size));
  c.u16(BasicDeliver::kClassId);
  c.u16(BasicDeliver::kMethodId);
  c.shortstr(m.consumer_tag);
  c.u64(m.delivery_tag);
  c.u8(m.redelivered ? 1 : 0);
  c.shortstr(m.exchange);
  c.shortstr(m.routing_key);
  c.u8(kFrameEnd);
  c.u8(kFrameHeader);
  c.u16(channel);
  c.u32(static_cast<uint32_t>(header_size));
  c.u16(kBasicClass);
  c.u16(0);  // weight
  c.u64(body.size());
  c.bytes(raw_properties);
  c.u8(kFrameEnd);
  if (!one_body_frame) {
    write_body(out, channel, body, frame_max);
    return;
  }
  c.u8(kFrameBody);
  c.u16(channel);
  c.u32(static_cast<uint32_t>(body.size()));
  out.append(body);
  out.push_back(static_cast<char>(kFrameEnd));
}

void write_heartbeat(std::string& out) {
  static constexpr char kHeartbeat[] = {8, 0, 0, 0, 0, 0, 0, char(0xCE)};
  out.append(kHeartbeat, sizeof(kHeartbeat));
}

}  // namespace warren::amqp
