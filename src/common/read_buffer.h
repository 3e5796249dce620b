// A connection's input buffer, sized by its traffic: it starts at kStart (an idle connection
// holds 4 KiB instead of a bulk-sized buffer), doubles whenever a read fills all the room it had
// (bulk publishers soon read up to `max` bytes per call, and a frame larger than the buffer
// makes room for itself the same way), and goes back to kStart once no read has brought a
// quarter of its size for kQuiet while nothing is buffered. Only resized between reads: a
// pending read owns the memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>

namespace warren {

class ReadBuffer {
 public:
  static constexpr size_t kStart = 4096;
  static constexpr auto kQuiet = std::chrono::seconds(1);
  using Clock = std::chrono::steady_clock;

  explicit ReadBuffer(size_t max) : max_(max < kStart ? kStart : max) { resize(kStart, 0); }

  char* data() { return data_.get(); }
  size_t size() const { return size_; }

  // Before a read, with `held` bytes of a partial frame at the front: grows after a read that
  // filled the room it had, shrinks after a quiet spell. Returns the room to read into.
  size_t prepare(size_t held, Clock::time_point now) {
    if (filled_ || held == size_) {
      filled_ = false;
      if (size_ < max_) resize(size_ * 2 < max_ ? size_ * 2 : max_, held);
    } else if (size_ > kStart && held == 0 && now - last_busy_ > kQuiet) {
      resize(kStart, 0);
    }
    room_ = size_ - held;
    return room_;
  }
  // A frame of `frame_size` bytes larger than the buffer (and than max, for protocols whose
  // largest frame is far above the bulk read size, as MQTT's 256 MB): grows to hold it whole,
  // keeping the `held` bytes received so far; the buffer shrinks back after a quiet spell.
  void fit(size_t frame_size, size_t held) {
    if (frame_size > size_) resize(frame_size, held);
  }
  // After a read of n bytes into the room prepare() gave.
  void read(size_t n, Clock::time_point now) {
    if (n == room_) filled_ = true;
    if (n >= size_ / 4) last_busy_ = now;
  }

 private:
  void resize(size_t size, size_t held) {
    // No zero fill: the pages a quiet connection never reads into are never touched.
    auto bigger = std::make_unique_for_overwrite<char[]>(size);
    if (held > 0) std::memcpy(bigger.get(), data_.get(), held);
    data_ = std::move(bigger);
    size_ = size;
  }

  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t max_;
  size_t room_ = 0;
  bool filled_ = false;
  Clock::time_point last_busy_{};
};

}  // namespace warren
