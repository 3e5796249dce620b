// Big-endian wire primitives: a bounds-checked reader over received bytes and an appending writer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace warren {

// Reads AMQP primitives from a byte range. Never throws; a read past the end sets ok() to false and
// yields zeros, so decoders check ok() once at the end instead of after every field.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  explicit Reader(std::string_view s)
      : Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }
  const uint8_t* position() const { return p_; }
  void fail() { ok_ = false; p_ = end_; }

  uint8_t u8() {
    if (!need(1)) return 0;
    return *p_++;
  }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = static_cast<uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = (uint32_t(p_[0]) << 24) | (uint32_t(p_[1]) << 16) | (uint32_t(p_[2]) << 8) |
                 uint32_t(p_[3]);
    p_ += 4;
    return v;
  }
  uint64_t u64() {
    uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  std::string_view bytes(size_t n) {
    if (!need(n)) return {};
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return v;
  }
  std::string_view shortstr() { return bytes(u8()); }
  std::string_view longstr() {
    uint32_t n = u32();
    return bytes(n);
  }

 private:
  bool need(size_t n) {
    if (!ok_ || remaining() < n) {
      fail();
      return false;
    }
    return true;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// Appends AMQP primitives to a growable byte buffer (std::string as storage: contiguous, SSO-free
// once large, and cheap to hand to asio as a buffer).
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  size_t size() const { return out_.size(); }
  std::string& buffer() { return out_; }

  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    char b[2] = {char(v >> 8), char(v)};
    out_.append(b, 2);
  }
  void u32(uint32_t v) {
    char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out_.append(b, 4);
  }
  void u64(uint64_t v) {
    u32(uint32_t(v >> 32));
    u32(uint32_t(v));
  }
  void bytes(std::string_view s) { out_.append(s.data(), s.size()); }
  // Short strings longer than 255 bytes are truncated: callers validate lengths before encoding.
  void shortstr(std::string_view s) {
    size_t n = s.size() > 255 ? 255 : s.size();
    u8(static_cast<uint8_t>(n));
    out_.append(s.data(), n);
  }
  void longstr(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s);
  }
  // Overwrites a previously reserved big-endian u32 (used for frame and table sizes).
  void patch_u32(size_t at, uint32_t v) {
    out_[at] = char(v >> 24);
    out_[at + 1] = char(v >> 16);
    out_[at + 2] = char(v >> 8);
    out_[at + 3] = char(v);
  }

 private:
  std::string& out_;
};

}  // namespace warren
