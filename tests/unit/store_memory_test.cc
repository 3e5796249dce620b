// The store's side of giving memory back (broker/memory_trimmer.h): ByteBuffer past
// kMapThreshold is its own mapping and keeps its bytes across growth, and a purge's synced ack
// records go to MessageStoreOptions::dispose whole, to be freed in steps.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "store/message_store.h"
#include "store/segment_writer.h"

namespace warren::store {
namespace {

using namespace std::chrono_literals;

TEST(StoreByteBuffer, KeepsItsBytesWhileGrowingPastTheMapThreshold) {
  ByteBuffer b;
  uint64_t n = 0;
  // 4-byte pieces up to 3x the threshold: heap first, then a mapping grown with mremap.
  while (b.size() < 3 * ByteBuffer::kMapThreshold) {
    char* p = b.grow(4);
    uint32_t v = static_cast<uint32_t>(n++);
    std::memcpy(p, &v, 4);
  }
  EXPECT_GE(b.capacity(), b.size());
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t v;
    std::memcpy(&v, b.data() + 4 * i, 4);
    ASSERT_EQ(v, static_cast<uint32_t>(i));
  }
  b.release();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.capacity(), 0u);
  // Usable again, starting small.
  std::memcpy(b.grow(3), "abc", 3);
  EXPECT_EQ(std::string(b.data(), 3), "abc");
  EXPECT_LT(b.capacity(), ByteBuffer::kMapThreshold);
  b.clear();
  EXPECT_EQ(b.size(), 0u);
}

class StoreDisposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-memstore-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<MessageStore> open() {
    MessageStoreOptions o;
    o.dir = dir_;
    o.dispose = [this](std::function<uint64_t(uint64_t)> step) { steps_.push_back(step); };
    auto s = std::make_unique<MessageStore>(o, [this](const Completion& c) {
      std::lock_guard lk(mu_);
      done_.push_back(c);
      cv_.notify_all();
    });
    EXPECT_FALSE(s->open([](const RecoveredMessage&) {}));
    return s;
  }
  // Flushes, waits for the round covering `seq` and gives its completion(s) to the store, as the
  // broker does on its io thread.
  void sync(MessageStore& s, uint64_t seq) {
    s.flush();
    std::unique_lock lk(mu_);
    ASSERT_TRUE(
        cv_.wait_for(lk, 20s, [&] { return !done_.empty() && done_.back().last_seq >= seq; }));
    for (const Completion& c : done_) s.on_completion(c);
    done_.clear();
  }
  // Appends n messages and their acks; returns the last seq.
  uint64_t messages_and_acks(MessageStore& s, uint64_t n) {
    std::vector<Position> pos;
    uint64_t seq = 0;
    for (uint64_t i = 0; i < n; ++i) {
      auto a = s.append_message(1, next_id_ + i, {"body"});
      pos.push_back(a.pos);
      seq = a.seq;
    }
    sync(s, seq);
    for (uint64_t i = 0; i < n; ++i) EXPECT_FALSE(s.append_ack(1, next_id_ + i, pos[i]));
    next_id_ += n;
    return s.next_seq() - 1;
  }

  std::string dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Completion> done_;
  std::vector<std::function<uint64_t(uint64_t)>> steps_;
  uint64_t next_id_ = 1;
};

TEST_F(StoreDisposeTest, SyncedAcksOfAPurgeOfManyGoToDisposeAndAreFreedInSteps) {
  auto s = open();
  sync(*s, messages_and_acks(*s, 1000));
  EXPECT_TRUE(steps_.empty());  // a few acks are simply popped

  uint64_t last = messages_and_acks(*s, 70000);
  sync(*s, last);
  ASSERT_EQ(steps_.size(), 1u);
  uint64_t total = 0, calls = 0;
  while (uint64_t freed = steps_[0](1 << 20)) {
    EXPECT_LE(freed, (1u << 20) + 64);  // about the budget
    total += freed;
    ++calls;
  }
  EXPECT_GE(total, 70000u * 24);  // every record (at least its seq, ids and segment)
  EXPECT_GT(calls, 1u);
  EXPECT_EQ(steps_[0](1 << 20), 0u);

  // The store goes on as before: acks written after the handover are tracked and synced.
  sync(*s, messages_and_acks(*s, 10));
  EXPECT_EQ(steps_.size(), 1u);
  EXPECT_EQ(s->failed_acks(), 0u);
}

}  // namespace
}  // namespace warren::store
