// The UTF-8 rule RabbitMQ 3.x applies to received short strings (exchange and queue names, routing
// keys, consumer tags, reply texts...). Header-only: the generated codec uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace warren {

// True when s is UTF-8 as Erlang's xmerl_ucs:from_utf8 reads it, which is what RabbitMQ checks
// (rabbit_binary_parser:assert_utf8): sequences of at most 4 bytes without overlong forms, but
// surrogates (U+D800..U+DFFF) and code points up to U+1FFFFF (F4 90.. to F7 ..) are accepted.
// Checked against RabbitMQ 3.10.8.
inline bool is_rabbit_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* end = p + s.size();
  auto continuation = [](uint8_t b) { return (b & 0xC0) == 0x80; };
  while (p < end) {
    uint8_t b = *p;
    size_t extra;
    if (b < 0x80) {
      ++p;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2;
    } else if (b >= 0xF0 && b <= 0xF7) {
      extra = 3;
    } else {
      return false;  // a continuation byte, C0/C1 (always overlong), or a 5- or 6-byte lead
    }
    if (size_t(end - p) < extra + 1) return false;
    for (size_t i = 1; i <= extra; ++i)
      if (!continuation(p[i])) return false;
    // Overlong 3- and 4-byte forms: the value would fit in fewer bytes.
    if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xF0 && p[1] < 0x90)) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace warren
