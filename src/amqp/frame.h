// AMQP 0-9-1 framing: splitting received bytes into frames and writing frames into an output buffer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "amqp/methods.h"
#include "common/wire.h"

namespace warren::amqp {

inline constexpr std::string_view kProtocolHeader{"AMQP\x00\x00\x09\x01", 8};
inline constexpr size_t kFrameOverhead = 8;  // type(1) channel(2) size(4) ... end(1)

struct Frame {
  uint8_t type = 0;
  uint16_t channel = 0;
  std::string_view payload;
};

enum class ParseStatus { kFrame, kNeedMore, kTooLarge, kBadFrameEnd };

// Looks at the start of data: a whole frame (consumed bytes in *consumed), not enough bytes yet, or
// a framing error. max_payload bounds the declared size before we wait for that many bytes. With
// kBadFrameEnd, *frame holds the frame that lacks its end octet.
ParseStatus parse_frame(std::string_view data, uint32_t max_payload, Frame* frame, size_t* consumed);

// RabbitMQ's analyze_frame: a method frame carries at least its class and method ids, a content
// header its class, weight and body size (12 bytes), a heartbeat nothing at all; other frame types
// are unknown. Whether the frame may come on its channel is another question.
inline bool well_formed(const Frame& f) {  // inline: called for every frame
  switch (f.type) {
    case kFrameMethod: return f.payload.size() >= 4;
    case kFrameHeader: return f.payload.size() >= 12;
    case kFrameBody: return true;
    case kFrameHeartbeat: return f.payload.empty();
    default: return false;
  }
}

// Appends a method frame.
template <class Method>
void write_method(std::string& out, uint16_t channel, const Method& m) {
  Writer w(out);
  w.u8(kFrameMethod);
  w.u16(channel);
  size_t size_at = w.size();
  w.u32(0);
  m.encode(w);
  w.patch_u32(size_at, static_cast<uint32_t>(w.size() - size_at - 4));
  w.u8(kFrameEnd);
}

// Appends a content header frame carrying already-encoded property bytes (flags + values).
void write_content_header(std::string& out, uint16_t channel, uint64_t body_size,
                          std::string_view raw_properties);

// Appends body frames, each at most frame_max bytes on the wire (0 means unlimited).
void write_body(std::string& out, uint16_t channel, std::string_view body, uint32_t frame_max);

void write_heartbeat(std::string& out);

// Appends a whole delivery: the basic.deliver method frame, the content header and the body
// frames. Bytes as write_method + write_content_header + write_body give them (a unit test holds
// them equal), written with one resize instead of a string append per field: this runs once per
// message delivered.
void write_delivery(std::string& out, uint16_t channel, const BasicDeliver& m,
                    std::string_view raw_properties, std::string_view body, uint32_t frame_max);

}  // namespace warren::amqp
