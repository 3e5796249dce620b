// ReadBuffer (common/read_buffer.h): small while quiet, doubling under bulk reads up to its max,
// keeping a partial frame when it grows, and back to the start size after a quiet spell.
#include <gtest/gtest.h>

#include <cstring>

#include "common/read_buffer.h"

namespace warren {
namespace {

using Clock = ReadBuffer::Clock;

TEST(ReadBufferTest, GrowsWhenReadsFillItAndShrinksWhenQuiet) {
  ReadBuffer b(64 * 1024);
  auto t = Clock::now();
  EXPECT_EQ(b.size(), ReadBuffer::kStart);
  EXPECT_EQ(b.prepare(0, t), ReadBuffer::kStart);
  b.read(100, t);  // a small read: no growth
  EXPECT_EQ(b.prepare(0, t), ReadBuffer::kStart);
  // Bulk: every read fills the room, the buffer doubles up to its max.
  for (size_t expected = ReadBuffer::kStart; expected < 64 * 1024; expected *= 2) {
    size_t room = b.prepare(0, t);
    EXPECT_EQ(room, expected);
    b.read(room, t);
  }
  EXPECT_EQ(b.prepare(0, t), 64u * 1024);
  b.read(64 * 1024, t);
  EXPECT_EQ(b.prepare(0, t), 64u * 1024) << "capped";
  b.read(20 * 1024, t);  // a quarter or more keeps it busy
  EXPECT_EQ(b.prepare(0, t + std::chrono::milliseconds(500)), 64u * 1024);
  b.read(10, t + std::chrono::milliseconds(600));
  // Not with a partial frame held, but once nothing is held after a quiet second.
  EXPECT_EQ(b.prepare(5, t + std::chrono::seconds(3)), 64u * 1024 - 5);
  b.read(1, t + std::chrono::seconds(3));
  EXPECT_EQ(b.prepare(0, t + std::chrono::seconds(3)), ReadBuffer::kStart);
}

TEST(ReadBufferTest, AFrameLargerThanTheBufferMakesRoomAndKeepsItsStart) {
  ReadBuffer b(1 << 20);
  auto t = Clock::now();
  size_t room = b.prepare(0, t);
  std::memset(b.data(), 'x', room);
  b.data()[0] = 'A';
  b.read(room, t);  // full: the frame continues
  room = b.prepare(ReadBuffer::kStart, t);  // all of it held
  EXPECT_EQ(b.size(), 2 * ReadBuffer::kStart);
  EXPECT_EQ(room, ReadBuffer::kStart);
  EXPECT_EQ(b.data()[0], 'A');
  EXPECT_EQ(b.data()[ReadBuffer::kStart - 1], 'x');
}

}  // namespace
}  // namespace warren
