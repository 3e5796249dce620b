// A connection's output, double-buffered: the protocol appends to out() while the previous batch
// is written from the other buffer, so one socket write carries everything a loop turn
// produced. A burst's large buffer is given back once writes are small again, so an idle
// connection holds little.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace warren {

class OutputBuffers {
 public:
  std::string& out() { return out_; }
  const std::string& out() const { return out_; }
  bool writing() const { return in_flight_; }
  // Whether there is output and no write in flight: start_write() may be called.
  bool ready_to_write() const { return !in_flight_ && !out_.empty(); }
  // Moves out() to the write buffer and returns the bytes to write.
  std::string_view start_write() {
    writing_.swap(out_);
    in_flight_ = true;
    return writing_;
  }
  // The write started by start_write() finished after n bytes (or failed).
  void write_done(size_t n) {
    in_flight_ = false;
    writing_.clear();
    if (writing_.capacity() > kKeptCapacity && n < writing_.capacity() / 8)
      std::string().swap(writing_);
  }

 private:
  static constexpr size_t kKeptCapacity = 64u << 10;
  std::string out_;
  std::string writing_;
  bool in_flight_ = false;
};

}  // namespace warren
