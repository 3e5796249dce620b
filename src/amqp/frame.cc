#include "amqp/frame.h"

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

bool well_formed(const Frame& f) {
  switch (f.type) {
    case kFrameMethod: return f.payload.size() >= 4;
    case kFrameHeader: return f.payload.size() >= 12;
    case kFrameBody: return true;
    case kFrameHeartbeat: return f.payload.empty();
    default: return false;
  }
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

void write_heartbeat(std::string& out) {
  static constexpr char kHeartbeat[] = {8, 0, 0, 0, 0, 0, 0, char(0xCE)};
  out.append(kHeartbeat, sizeof(kHeartbeat));
}

}  // namespace warren::amqp
