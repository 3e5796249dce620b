// Reads STOMP frames from buffered bytes with RabbitMQ's grammar (rabbit_stomp_frame): frames may
// be separated by NULs and EOLs (heart-beats); CR LF counts as LF; header names and values are
// unescaped (\\ \c \n \r) in every version, a bad escape or a header line without a colon is an
// error; a header value may hold unescaped colons; only SEND's body is read by its
// content-length, any other frame's body ends at the first NUL.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "stomp/frame.h"

namespace warren::stomp {

enum class ParseStatus {
  kFrame,     // *out holds a frame; *used bytes were consumed (noise before it included)
  kNeedMore,  // no complete frame yet; *used bytes of noise may be dropped
  kTooLarge,  // the frame is (or will be) larger than max_frame_size
  kMalformed,  // not STOMP: the reason is in *error (as RabbitMQ logs it)
};

// max_frame_size bounds the command, headers and body of one frame (RabbitMQ's
// stomp.max_frame_size).
ParseStatus parse_frame(std::string_view data, size_t max_frame_size, Frame* out, size_t* used,
                        std::string* error);

}  // namespace warren::stomp
