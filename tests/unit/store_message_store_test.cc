// MessageStore end to end, in temp dirs: append/flush/reopen, acks, reads, torn tails, segment
// rollover and GC, group-commit completions, injected I/O failures and kill -9 durability.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/message_store.h"

namespace warren::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Collects Completions from the sync thread; tests wait on it.
class Tracker {
 public:
  CompletionFn fn() {
    return [this](const Completion& c) {
      std::lock_guard lk(mu_);
      all_.push_back(c);
      cv_.notify_all();
    };
  }
  // Waits until a completion covers `seq`; returns it (error set if that round failed).
  Completion wait_for(uint64_t seq) {
    std::unique_lock lk(mu_);
    Completion found;
    bool ok = cv_.wait_for(lk, 20s, [&] {
      for (const Completion& c : all_)
        if (c.first_seq <= seq && seq <= c.last_seq) {
          found = c;
          return true;
        }
      return false;
    });
    EXPECT_TRUE(ok) << "no completion for seq " << seq;
    return found;
  }
  std::vector<Completion> all() {
    std::lock_guard lk(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Completion> all_;
};

// Fails chosen syscalls on demand; optionally holds fdatasync until released, so a test can
// queue batches behind a sync that is about to fail.
class FaultyIo : public SegmentIo {
 public:
  std::atomic<int> fail_pwritev{0};
  std::atomic<int> fail_fdatasync{0};
  std::atomic<int> pwritev_errno{ENOSPC};
  std::atomic<int> fdatasync_errno{EIO};
  std::atomic<int> fail_create{0};  // open() with O_CREAT, i.e. a new segment file
  std::atomic<bool> hold_sync{false};
  std::atomic<bool> sync_entered{false};

  void release() {
    std::lock_guard lk(mu_);
    hold_sync = false;
    cv_.notify_all();
  }
  std::error_code pwritev(int fd, const iovec* iov, int count, uint64_t offset) override {
    if (take(fail_pwritev)) return {pwritev_errno.load(), std::generic_category()};
    return SegmentIo::pwritev(fd, iov, count, offset);
  }
  std::error_code open(const std::string& path, int flags, UniqueFd* out) override {
    if ((flags & O_CREAT) && take(fail_create))
      return std::make_error_code(std::errc::too_many_files_open);
    return SegmentIo::open(path, flags, out);
  }
  std::error_code fdatasync(int fd) override {
    sync_entered = true;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !hold_sync.load(); });
    }
    // Like a real EIO, the data went to the page cache but did not reach the disk.
    if (take(fail_fdatasync)) return {fdatasync_errno.load(), std::generic_category()};
    return SegmentIo::fdatasync(fd);
  }

 private:
  static bool take(std::atomic<int>& n) {
    int v = n.load();
    while (v > 0)
      if (n.compare_exchange_weak(v, v - 1)) return true;
    return false;
  }
  std::mutex mu_;
  std::condition_variable cv_;
};

struct Got {
  uint64_t queue_id, msg_id, seq;
  Position pos;
  std::string body;
};

class StoreMessageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-msgstore-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  MessageStoreOptions options(uint32_t segment_size = 64u << 20, SegmentIo* io = nullptr) {
    MessageStoreOptions o;
    o.dir = dir_;
    o.segment_size = segment_size;
    o.io = io;
    return o;
  }
  // Opens a store, collecting what recovery delivers into got_ and its report into report_.
  std::unique_ptr<MessageStore> open(MessageStoreOptions o) {
    got_.clear();
    auto s = std::make_unique<MessageStore>(std::move(o), tracker_.fn());
    std::error_code ec = s->open(
        [&](const RecoveredMessage& m) {
          got_.push_back(Got{m.queue_id, m.msg_id, m.seq, m.pos, std::string(m.body)});
        },
        &report_);
    EXPECT_FALSE(ec) << ec.message();
    return s;
  }
  std::unique_ptr<MessageStore> open() { return open(options()); }

  std::vector<fs::path> segment_files() {
    std::vector<fs::path> v;
    for (auto& e : fs::directory_iterator(dir_ + "/msgs"))
      if (e.path().extension() == ".seg") v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
  }
  static std::string body_of(uint64_t q, uint64_t m) {
    return "q" + std::to_string(q) + "-m" + std::to_string(m);
  }

  std::string dir_;
  Tracker tracker_;
  std::vector<Got> got_;
  RecoveryReport report_;
};

TEST_F(StoreMessageStoreTest, AppendFlushReopenReturnsEverythingInOrder) {
  uint64_t last = 0;
  {
    auto s = open();
    EXPECT_EQ(report_.messages, 0u);
    for (uint64_t i = 0; i < 300; ++i) {
      uint64_t q = i % 3, m = i / 3;
      std::string b = body_of(q, m);
      // Four parts, as the broker will pass exchange, routing key, properties and body.
      auto a = s->append_message(q, m, {"ex", "", b.substr(0, 2), b.substr(2)});
      ASSERT_TRUE(a);
      EXPECT_EQ(a.seq, i + 1);
      last = a.seq;
      if (i % 7 == 0) s->flush();
    }
    s->flush();
    EXPECT_FALSE(tracker_.wait_for(last).error);
  }
  auto s = open();
  ASSERT_EQ(got_.size(), 300u);
  for (uint64_t i = 0; i < 300; ++i) {
    uint64_t q = i % 3, m = i / 3;
    EXPECT_EQ(got_[i].queue_id, q);
    EXPECT_EQ(got_[i].msg_id, m);
    EXPECT_EQ(got_[i].seq, i + 1);
    EXPECT_EQ(got_[i].body, "ex" + body_of(q, m));
  }
  EXPECT_EQ(report_.messages, 300u);
  EXPECT_EQ(report_.bytes_dropped, 0u);
  EXPECT_TRUE(report_.damaged.empty());
  EXPECT_EQ(report_.next_seq, last + 1);
  EXPECT_EQ(s->append_message(9, 9, {"x"}).seq, last + 1) << "seqs continue across restarts";
}

TEST_F(StoreMessageStoreTest, AckedMessagesDoNotComeBack) {
  {
    auto s = open();
    std::vector<Position> pos;
    for (uint64_t m = 0; m < 100; ++m) pos.push_back(s->append_message(1, m, {body_of(1, m)}).pos);
    for (uint64_t m = 0; m < 50; m += 2) ASSERT_FALSE(s->append_ack(1, m, pos[m]));  // same batch
    s->flush();
    for (uint64_t m = 50; m < 100; m += 2) ASSERT_FALSE(s->append_ack(1, m, pos[m]));  // later
    s->flush();
  }  // close() syncs everything
  {
    auto s = open();
    ASSERT_EQ(got_.size(), 50u);
    for (size_t i = 0; i < got_.size(); ++i) EXPECT_EQ(got_[i].msg_id, 2 * i + 1);
    EXPECT_EQ(report_.acks_applied, 50u);
    // Ack some recovered ones by their recovered position, and reuse an acked msg id.
    std::vector<Got> first = got_;
    for (size_t i = 0; i < 10; ++i) s->append_ack(1, first[i].msg_id, first[i].pos);
    s->append_message(1, 0, {"reused id 0"});
  }
  auto s = open();
  ASSERT_EQ(got_.size(), 41u);
  EXPECT_EQ(got_[0].msg_id, 21u);
  EXPECT_EQ(got_.back().msg_id, 0u);
  EXPECT_EQ(got_.back().body, "reused id 0") << "an old ack must not kill a later message";
}

TEST_F(StoreMessageStoreTest, ReadServesPendingInFlightWrittenAndRecoveredMessages) {
  FaultyIo io;
  std::string big(1 << 20, 'B');
  Position p1, p2, p3;
  {
    auto s = open(options(64u << 20, &io));
    p1 = s->append_message(1, 1, {"hello ", "world"}).pos;
    std::string out;
    ASSERT_FALSE(s->read(p1, &out));  // still in the owner's batch
    EXPECT_EQ(out, "hello world");

    io.sync_entered = false;  // (the round that created the segment at open() set it)
    io.hold_sync = true;      // keep the next round in flight while we read from it
    s->flush();
    while (!io.sync_entered) std::this_thread::sleep_for(1ms);
    ASSERT_FALSE(s->read(p1, &out));
    EXPECT_EQ(out, "hello world");
    auto a2 = s->append_message(1, 2, {big});
    p2 = a2.pos;
    s->flush();  // queued behind the held sync
    ASSERT_FALSE(s->read(p2, &out));
    EXPECT_EQ(out, big);
    io.release();
    EXPECT_FALSE(tracker_.wait_for(a2.seq).error);
    ASSERT_FALSE(s->read(p2, &out));  // now from the file
    EXPECT_EQ(out, big);
    p3 = s->append_message(2, 1, {""}).pos;
    ASSERT_FALSE(s->read(p3, &out));
    EXPECT_EQ(out, "");
    EXPECT_EQ(s->read(Position{p1.segment + 100, 32, 40}, &out),
              make_error_code(StoreErrc::kNoSuchSegment));
  }
  auto s = open();
  ASSERT_EQ(got_.size(), 3u);
  std::string out;
  ASSERT_FALSE(s->read(got_[1].pos, &out));
  EXPECT_EQ(out, big);
  EXPECT_EQ(got_[1].pos, p2);
}

TEST_F(StoreMessageStoreTest, LargeBodyGetsItsOwnSegmentAndTooLargeIsRefused) {
  auto s = open(options(4096));
  std::string big(100000, 'x');
  auto a = s->append_message(1, 1, {big});
  ASSERT_TRUE(a);
  auto b = s->append_message(1, 2, {"small"});
  EXPECT_GT(b.pos.segment, a.pos.segment);
  // 5,400 views of the same 100 KB: over the 512 MiB limit without allocating it.
  std::vector<std::string_view> parts(kMaxBodySize / big.size() + 1, big);
  auto c = s->append_message(1, 3, parts);
  EXPECT_EQ(c.error, make_error_code(StoreErrc::kTooLarge));
  s.reset();
  s = open(options(4096));
  ASSERT_EQ(got_.size(), 2u);
  EXPECT_EQ(got_[0].body, big);
}

// ---------------------------------------------------------------- torn tails

class StoreTornTailTest : public StoreMessageStoreTest {
 protected:
  // 10 durable messages "m<i>" with 100-byte bodies in the newest segment; returns its path.
  fs::path write_ten() {
    {
      auto s = open();
      for (uint64_t m = 1; m <= 10; ++m) s->append_message(1, m, {body(m)});
    }
    auto files = segment_files();
    return files.back();
  }
  static std::string body(uint64_t m) { return std::to_string(m) + std::string(100, '.'); }
  static uint64_t record(uint64_t m) { return message_record_size(body(m).size()); }
  uint64_t end_of(uint64_t n) {  // file offset after message n
    uint64_t off = kSegmentHeaderSize;
    for (uint64_t m = 1; m <= n; ++m) off += record(m);
    return off;
  }
  void expect_recovered(uint64_t n) {
    ASSERT_EQ(got_.size(), n);
    for (uint64_t m = 1; m <= n; ++m) EXPECT_EQ(got_[m - 1].body, body(m));
  }
};

TEST_F(StoreTornTailTest, TruncatedMidRecord) {
  fs::path seg = write_ten();
  ASSERT_EQ(fs::file_size(seg), end_of(10));
  fs::resize_file(seg, end_of(10) - 7);
  auto s = open();
  expect_recovered(9);
  EXPECT_EQ(report_.bytes_dropped, record(10) - 7);
  ASSERT_EQ(report_.damaged.size(), 1u);
  EXPECT_EQ(report_.damaged[0].reason, DecodeStatus::kTruncated);
  EXPECT_EQ(report_.damaged[0].valid_end, end_of(9));
  EXPECT_EQ(fs::file_size(seg), end_of(9)) << "the tail is cut on disk";
  // The store keeps working, and a second recovery is clean.
  s->append_message(1, 11, {body(11)});
  s.reset();
  s = open();
  EXPECT_EQ(got_.size(), 10u);
  EXPECT_EQ(report_.bytes_dropped, 0u);
  EXPECT_TRUE(report_.damaged.empty());
}

TEST_F(StoreTornTailTest, GarbageAppended) {
  fs::path seg = write_ten();
  std::string garbage(4000, '\0');
  std::mt19937 rng(3);
  for (char& c : garbage) c = static_cast<char>(rng());
  {
    FILE* f = fopen(seg.c_str(), "ab");
    fwrite(garbage.data(), 1, garbage.size(), f);
    fclose(f);
  }
  auto s = open();
  expect_recovered(10);
  EXPECT_EQ(report_.bytes_dropped, garbage.size());
  EXPECT_EQ(fs::file_size(seg), end_of(10));
}

TEST_F(StoreTornTailTest, ZerosAppended) {
  fs::path seg = write_ten();
  fs::resize_file(seg, end_of(10) + 8192);  // what a crash after a size update can leave
  auto s = open();
  expect_recovered(10);
  EXPECT_EQ(report_.bytes_dropped, 8192u);
  ASSERT_EQ(report_.damaged.size(), 1u);
  EXPECT_EQ(report_.damaged[0].reason, DecodeStatus::kZeros);
}

TEST_F(StoreTornTailTest, FlippedByteInLastRecord) {
  fs::path seg = write_ten();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end_of(10) - 20));
    char c;
    f.seekg(static_cast<std::streamoff>(end_of(10) - 20));
    f.get(c);
    f.seekp(static_cast<std::streamoff>(end_of(10) - 20));
    f.put(static_cast<char>(c ^ 0x40));
  }
  auto s = open();
  expect_recovered(9);
  EXPECT_EQ(report_.bytes_dropped, record(10));
  ASSERT_EQ(report_.damaged.size(), 1u);
  EXPECT_EQ(report_.damaged[0].reason, DecodeStatus::kBadCrc);
}

TEST_F(StoreTornTailTest, SegmentWithoutHeaderIsSetAside) {
  write_ten();
  // A crash right after a segment was created: empty file; and one with a mangled header.
  { std::ofstream(dir_ + "/msgs/0000000100.seg"); }
  { std::ofstream(dir_ + "/msgs/0000000101.seg") << "not a segment header, just text......"; }
  auto s = open();
  expect_recovered(10);
  EXPECT_EQ(report_.damaged.size(), 2u);
  EXPECT_FALSE(fs::exists(dir_ + "/msgs/0000000100.seg"));
  EXPECT_TRUE(fs::exists(dir_ + "/msgs/0000000101.seg.corrupt"));
  EXPECT_GT(s->active_segment(), 101u);
}

// ---------------------------------------------------------------- rollover and GC

TEST_F(StoreMessageStoreTest, RolloverAndGcDeleteFullyAckedSegmentsButNeverTheActiveOne) {
  auto s = open(options(4096));
  std::string body(500, 'x');
  std::vector<MessageStore::Appended> a;
  for (uint64_t m = 0; m < 100; ++m) a.push_back(s->append_message(1, m, {body}));
  s->flush();
  tracker_.wait_for(a.back().seq);
  size_t before = s->segments().size();
  EXPECT_GE(before, 12u);  // ~7 records per 4 KiB segment
  EXPECT_EQ(segment_files().size(), before) << "one file per segment";

  // Ack every message of the first two segments. flush() hands the deletions over in the same
  // batch as the acks, and the sync thread deletes before it reports that round.
  uint32_t first = a.front().pos.segment;
  for (size_t m = 0; m < a.size(); ++m)
    if (a[m].pos.segment <= first + 1) s->append_ack(1, m, a[m].pos);
  s->flush();
  tracker_.wait_for(s->next_seq() - 1);
  auto ids = s->segments();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), first), 0);
  for (auto& p : segment_files()) EXPECT_GT(std::stoul(p.stem().string()), first + 1) << p;

  // Ack everything: only the active segment may remain.
  for (size_t m = 0; m < a.size(); ++m)
    if (a[m].pos.segment > first + 1) s->append_ack(1, m, a[m].pos);
  auto last = s->append_message(3, 1, {"x"});
  s->flush();
  tracker_.wait_for(last.seq);
  EXPECT_EQ(s->segments(), std::vector<uint32_t>{s->active_segment()});
  EXPECT_EQ(segment_files().size(), 1u);
  EXPECT_GT(s->segments_deleted(), 10u);
  s.reset();
  s = open(options(4096));
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].body, "x");
}

TEST_F(StoreMessageStoreTest, RelocationMovesALiveMessageOutOfASparseSegment) {
  // Segment A: messages 0..6 of queue 1; all but message 3 are acked, so A is sparse.
  std::string body(500, 'x');
  auto s = open(options(4096));
  std::vector<MessageStore::Appended> a;
  for (uint64_t m = 0; m < 7; ++m) a.push_back(s->append_message(1, m, {body + std::to_string(m)}));
  uint32_t seg_a = a.front().pos.segment;
  ASSERT_EQ(a.back().pos.segment, seg_a);
  for (uint64_t m = 0; m < 7; ++m)
    if (m != 3) s->append_ack(1, m, a[m].pos);
  auto filler = s->append_message(2, 1, {body});  // rolls past A
  s->flush();
  tracker_.wait_for(filler.seq);
  EXPECT_EQ(s->sparse_segments(), std::vector<uint32_t>{seg_a});

  // Copy message 3 forward; once the copy is synced, retire the old one: A can go.
  std::string body3 = body + "3";
  std::string_view parts[] = {body3};
  auto copy = s->relocate(1, 3, parts);
  ASSERT_FALSE(copy.error);
  EXPECT_NE(copy.pos.segment, seg_a);
  s->flush();
  EXPECT_FALSE(tracker_.wait_for(copy.seq).error);
  s->finish_relocation(a[3].pos, copy.pos);
  auto last = s->append_message(2, 2, {"y"});
  s->flush();
  tracker_.wait_for(last.seq);
  auto ids = s->segments();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), seg_a), 0) << "the sparse segment is deleted";
  std::string read;
  EXPECT_FALSE(s->read(copy.pos, &read));
  EXPECT_EQ(read, body + "3");
  s.reset();

  s = open(options(4096));
  std::vector<std::pair<uint64_t, uint64_t>> keys;
  for (auto& g : got_) keys.emplace_back(g.queue_id, g.msg_id);
  EXPECT_EQ(keys, (std::vector<std::pair<uint64_t, uint64_t>>{{2, 1}, {1, 3}, {2, 2}}));
}

TEST_F(StoreMessageStoreTest, RelocatedCopyAndOriginalNeverBothComeBack) {
  std::string body(100, 'r');
  {
    // Killed after the copy was written but before finish_relocation: the copy supersedes.
    auto s = open();
    auto m = s->append_message(1, 7, {body});
    std::string_view parts[] = {body};
    auto copy = s->relocate(1, 7, parts);
    s->flush();
    tracker_.wait_for(copy.seq);
  }
  {
    auto s = open();
    ASSERT_EQ(got_.size(), 1u);
    EXPECT_EQ(report_.relocations, 1u);
    EXPECT_EQ(got_[0].msg_id, 7u);
    // Acked (by key) after the restart: gone for good, whichever copy it was.
    s->append_ack(1, 7, got_[0].pos);
    s->flush();
    tracker_.wait_for(s->next_seq() - 1);
  }
  auto s = open();
  EXPECT_TRUE(got_.empty());
}

TEST_F(StoreMessageStoreTest, AbandonedRelocationOfAnAckedMessageLeavesNothing) {
  std::string body(100, 'z');
  auto s = open(options(4096));
  auto m = s->append_message(1, 1, {body});
  std::string_view parts[] = {body};
  auto copy = s->relocate(1, 1, parts);
  s->append_ack(1, 1, m.pos);  // delivered and acked through its old position meanwhile
  s->flush();
  tracker_.wait_for(s->next_seq() - 1);
  s->abandon_relocation(copy.pos);
  EXPECT_EQ(s->live_messages(copy.pos.segment), 0u);
  s.reset();
  s = open(options(4096));
  EXPECT_TRUE(got_.empty());
}

TEST_F(StoreMessageStoreTest, SegmentHoldingAcksOutlivesTheSegmentItAcksInto) {
  // 2 records of 1833 bytes per 4 KiB segment; acks (33 bytes) fit in the gaps.
  std::string body(1800, 'b');
  uint32_t s1, s2;
  {
    auto s = open(options(4096));
    auto A = s->append_message(1, 1, {body});
    auto B = s->append_message(1, 2, {body});
    auto C = s->append_message(1, 3, {body});  // rolls
    s->append_ack(1, 1, A.pos);                // ack A lives in C's segment
    auto D = s->append_message(1, 4, {body});
    auto E = s->append_message(1, 5, {body});  // rolls
    s->append_ack(1, 3, C.pos);
    s->append_ack(1, 4, D.pos);  // C's segment now has nothing live...
    s1 = A.pos.segment;
    s2 = C.pos.segment;
    ASSERT_EQ(B.pos.segment, s1);
    ASSERT_EQ(D.pos.segment, s2);
    ASSERT_GT(E.pos.segment, s2);
    s->flush();
    auto P = s->append_message(9, 9, {"p"});
    s->flush();
    tracker_.wait_for(P.seq);
    // ...but holds the ack that keeps A dead while B keeps A's segment alive.
    EXPECT_TRUE(fs::exists(GroupCommitter::segment_path(s->journal_dir(), s2)));
  }
  auto s = open(options(4096));
  ASSERT_EQ(got_.size(), 3u);
  EXPECT_EQ(got_[0].msg_id, 2u);  // B
  EXPECT_EQ(got_[1].msg_id, 5u);  // E
  EXPECT_EQ(got_[2].msg_id, 9u);
  // Acking B frees A's segment, and with it the ack-holding one.
  s->append_ack(1, 2, got_[0].pos);
  s->flush();
  auto P = s->append_message(9, 10, {"p"});
  s->flush();
  tracker_.wait_for(P.seq);
  EXPECT_FALSE(fs::exists(GroupCommitter::segment_path(s->journal_dir(), s1)));
  EXPECT_FALSE(fs::exists(GroupCommitter::segment_path(s->journal_dir(), s2)));
}

// ---------------------------------------------------------------- group commit

TEST_F(StoreMessageStoreTest, GroupCommitCompletionsAreMonotonicAndCoverEverySeq) {
  // The first sync is held while the rest is flushed, so that batching is certain and does not
  // depend on how fast the disk syncs (a tmpfs syncs instantly, a busy disk slowly).
  FaultyIo io;
  auto s = open(options(1u << 20, &io));
  io.sync_entered = false;
  io.hold_sync = true;
  s->append_message(0, 1u << 30, {"first"});
  s->flush();
  while (!io.sync_entered) std::this_thread::yield();
  std::mt19937 rng(11);
  std::vector<MessageStore::Appended> live;
  uint64_t last = 0, flushes = 0;
  for (int i = 0; i < 100000; ++i) {
    auto a = s->append_message(i % 10, i, {"0123456789abcdef"});
    last = a.seq;
    live.push_back(a);
    if (rng() % 4 == 0 && !live.empty()) {
      auto& x = live[rng() % live.size()];
      if (x.seq) {
        s->append_ack(x.seq % 10, x.seq, x.pos);
        last = s->next_seq() - 1;
        x.seq = 0;
      }
    }
    if (rng() % 32 == 0) {
      s->flush();
      ++flushes;
    }
  }
  s->flush();
  io.release();
  tracker_.wait_for(last);
  auto all = tracker_.all();
  ASSERT_FALSE(all.empty());
  uint64_t expect = 1;
  for (const Completion& c : all) {
    EXPECT_FALSE(c.error);
    EXPECT_EQ(c.first_seq, expect) << "gap or overlap";
    EXPECT_GE(c.last_seq, c.first_seq);
    expect = c.last_seq + 1;
  }
  EXPECT_EQ(expect, last + 1);
  EXPECT_LT(all.size(), flushes) << "rounds should batch several flushes while a sync runs";
  EXPECT_EQ(s->unsynced_bytes(), 0u);
  RecordProperty("rounds", static_cast<int>(all.size()));
  RecordProperty("flushes", static_cast<int>(flushes));
}

// ---------------------------------------------------------------- injected failures

TEST_F(StoreMessageStoreTest, InjectedSyncAndWriteFailuresAreReportedNeverConfirmed) {
  FaultyIo io;
  struct Pub {
    uint64_t msg_id;
    MessageStore::Appended a;
  };
  std::vector<Pub> ok, failed;
  {
    auto s = open(options(64u << 20, &io));
    auto publish = [&](uint64_t from, uint64_t to) {
      std::vector<Pub> v;
      for (uint64_t m = from; m < to; ++m)
        v.push_back({m, s->append_message(1, m, {body_of(1, m)})});
      s->flush();
      return v;
    };
    auto add = [](std::vector<Pub>& to, const std::vector<Pub>& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    auto b1 = publish(0, 10);
    EXPECT_FALSE(tracker_.wait_for(b1.back().a.seq).error);
    add(ok, b1);

    // fdatasync fails (EIO) while a second batch for the same segment queues up behind it.
    io.fail_fdatasync = 1;
    io.hold_sync = true;
    io.sync_entered = false;
    auto b2 = publish(10, 20);
    while (!io.sync_entered) std::this_thread::sleep_for(1ms);
    auto b3 = publish(20, 30);
    io.release();
    Completion c2 = tracker_.wait_for(b2.back().a.seq);
    EXPECT_EQ(c2.error, std::error_code(EIO, std::generic_category()));
    EXPECT_EQ(c2.first_seq, b2.front().a.seq);
    Completion c3 = tracker_.wait_for(b3.back().a.seq);
    EXPECT_EQ(c3.error, make_error_code(StoreErrc::kSegmentFailed))
        << "queued behind a failed sync of the same segment: must fail too";
    EXPECT_TRUE(s->last_error());

    // The store moves on to a new segment and works again.
    auto b4 = publish(30, 40);
    EXPECT_GT(b4.front().a.pos.segment, b2.front().a.pos.segment);
    EXPECT_FALSE(tracker_.wait_for(b4.back().a.seq).error);
    add(ok, b4);

    // A failed write (ENOSPC) likewise.
    io.fail_pwritev = 1;
    auto b5 = publish(40, 50);
    EXPECT_EQ(tracker_.wait_for(b5.back().a.seq).error, std::errc::no_space_on_device);
    auto b6 = publish(50, 60);
    EXPECT_FALSE(tracker_.wait_for(b6.back().a.seq).error);
    add(ok, b6);
    add(failed, b2);
    add(failed, b3);
    add(failed, b5);

    // Every seq got exactly one answer, in order, and none of the failed ones was confirmed.
    uint64_t expect = 1;
    for (const Completion& c : tracker_.all()) {
      EXPECT_EQ(c.first_seq, expect);
      expect = c.last_seq + 1;
      for (auto& f : failed) {
        bool covered = c.first_seq <= f.a.seq && f.a.seq <= c.last_seq;
        EXPECT_TRUE(!covered || c.error) << "failed seq " << f.a.seq << " reported durable";
      }
    }

    // The broker nacks those publishes and drops the messages, acking them in the store so that
    // bytes which did reach the file (b2: written, then the sync failed) cannot resurrect.
    for (auto& f : failed) s->append_ack(1, f.msg_id, f.a.pos);
  }
  auto s = open();
  std::vector<uint64_t> ids, want;
  for (auto& g : got_) ids.push_back(g.msg_id);
  for (auto& p : ok) want.push_back(p.msg_id);
  EXPECT_EQ(ids, want);
}

TEST_F(StoreMessageStoreTest, AcksLostToAFailedWriteAreWrittenAgain) {
  FaultyIo io;
  {
    auto s = open(options(64u << 20, &io));
    std::vector<MessageStore::Appended> msgs;
    for (uint64_t m = 0; m < 4; ++m) msgs.push_back(s->append_message(1, m, {body_of(1, m)}));
    s->flush();
    s->on_completion(tracker_.wait_for(msgs.back().seq));

    // The acks of messages 0 and 1 hit a full disk. Message 2 keeps their segment alive, so
    // without a rewrite they would come back at the next start.
    io.fail_pwritev = 1;
    s->append_ack(1, 0, msgs[0].pos);
    s->append_ack(1, 1, msgs[1].pos);
    uint64_t ack_seq = s->next_seq() - 1;
    s->flush();
    Completion failed = tracker_.wait_for(ack_seq);
    EXPECT_TRUE(failed.error);
    s->on_completion(failed);
    EXPECT_EQ(s->failed_acks(), 2u);

    EXPECT_EQ(s->retry_failed_acks(), 2u);
    EXPECT_EQ(s->failed_acks(), 0u);
    uint64_t retry_seq = s->next_seq() - 1;
    s->flush();
    Completion retried = tracker_.wait_for(retry_seq);
    EXPECT_FALSE(retried.error);
    s->on_completion(retried);
    EXPECT_EQ(s->failed_acks(), 0u);
    // The retry changed no counts: messages 2 and 3 are still live in their segment.
    EXPECT_EQ(s->live_messages(msgs[2].pos.segment), 2u);
  }
  auto s = open();
  std::vector<uint64_t> ids;
  for (auto& g : got_) ids.push_back(g.msg_id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{2, 3}));
}

TEST_F(StoreMessageStoreTest, FailureToCreateTheNextSegmentIsReported) {
  FaultyIo io;
  std::string body(1000, 'c');
  std::vector<uint64_t> ok_ids;
  {
    auto s = open(options(4096, &io));
    uint64_t m = 0;
    auto a = s->append_message(1, m, {body});
    ok_ids.push_back(m++);
    s->flush();
    EXPECT_FALSE(tracker_.wait_for(a.seq).error);
    io.fail_create = 1;
    MessageStore::Appended last;
    std::vector<std::pair<uint64_t, Position>> in_round;
    for (int i = 0; i < 6; ++i) {  // rolls into a new segment whose file cannot be created
      last = s->append_message(1, m, {body});
      in_round.push_back({m++, last.pos});
    }
    s->flush();
    Completion c = tracker_.wait_for(last.seq);
    EXPECT_EQ(c.error, std::errc::too_many_files_open);
    for (auto& [id, pos] : in_round) s->append_ack(1, id, pos);  // the broker drops them
    auto b = s->append_message(1, m, {body});
    ok_ids.push_back(m++);
    s->flush();
    EXPECT_FALSE(tracker_.wait_for(b.seq).error);
  }
  auto s = open(options(4096));
  std::vector<uint64_t> ids;
  for (auto& g : got_) ids.push_back(g.msg_id);
  EXPECT_EQ(ids, ok_ids);
}

TEST_F(StoreMessageStoreTest, DamageInAnOlderSegmentCutsOnlyThatSegment) {
  std::string body(1000, 'd');  // 3 records per 4 KiB segment
  std::vector<MessageStore::Appended> a;
  {
    auto s = open(options(4096));
    for (uint64_t m = 0; m < 9; ++m) a.push_back(s->append_message(1, m, {body}));
  }
  ASSERT_EQ(a[3].pos.segment, a[5].pos.segment);
  ASSERT_LT(a[5].pos.segment, a[6].pos.segment);
  std::string mid = GroupCommitter::segment_path(dir_ + "/msgs", a[5].pos.segment);
  {
    std::fstream f(mid, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(a[5].pos.offset + 40);
    f.put('!');
  }
  auto s = open(options(4096));
  std::vector<uint64_t> ids;
  for (auto& g : got_) ids.push_back(g.msg_id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{0, 1, 2, 3, 4, 6, 7, 8}));
  ASSERT_EQ(report_.damaged.size(), 1u);
  EXPECT_EQ(report_.damaged[0].segment, a[5].pos.segment);
  EXPECT_EQ(report_.damaged[0].bytes_dropped, a[5].pos.size);
}

// ---------------------------------------------------------------- kill -9

// The child publishes through its own store and exits by SIGKILL; nothing in it touches gtest.
TEST_F(StoreMessageStoreTest, KilledAfterDurableCallbackKeepsEverythingUpToIt) {
  constexpr uint64_t kN = 3000;
  for (uint64_t round = 1; round <= 3; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::atomic<uint64_t> durable{0};
      std::atomic<bool> failed{false};
      MessageStore s(options(256u << 10), [&](const Completion& c) {
        if (c.error)
          failed = true;
        else
          durable = c.last_seq;
      });
      if (s.open([](const RecoveredMessage&) {})) _exit(2);
      uint64_t target = 0;
      for (uint64_t m = 0; m < kN; ++m) {
        target = s.append_message(round, m, {body_of(round, m)}).seq;
        if (m % 50 == 0) s.flush();
      }
      s.flush();
      while (durable < target && !failed) std::this_thread::sleep_for(100us);
      if (failed) _exit(3);
      // More publishes in flight, never confirmed: they may or may not survive.
      for (uint64_t m = kN; m < kN + 1000; ++m) s.append_message(round, m, {body_of(round, m)});
      s.flush();
      raise(SIGKILL);
      _exit(4);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  }
  auto s = open();
  for (uint64_t round = 1; round <= 3; ++round) {
    std::vector<Got> mine;
    for (auto& g : got_)
      if (g.queue_id == round) mine.push_back(g);
    ASSERT_GE(mine.size(), kN) << "round " << round;
    for (uint64_t m = 0; m < mine.size(); ++m) {  // a gap-free prefix, in publish order
      ASSERT_EQ(mine[m].msg_id, m);
      ASSERT_EQ(mine[m].body, body_of(round, m));
    }
  }
}

// kill -9 from outside at a random moment while publishing and acking with confirms: every
// message the child was told is durable (and not acked) must come back.
TEST_F(StoreMessageStoreTest, KillNineLoopDuringConfirmedPublishing) {
  std::mt19937 rng(2024);
  for (uint64_t round = 1; round <= 5; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      int out = fds[1];
      std::atomic<uint64_t> confirmed{0};
      MessageStore s(options(128u << 10), [out, &confirmed](const Completion& c) {
        if (c.error) return;
        confirmed = c.last_seq;
        (void)!write(out, &c.last_seq, sizeof c.last_seq);  // atomic: < PIPE_BUF
      });
      if (s.open([](const RecoveredMessage&) {})) _exit(2);
      uint64_t first = s.next_seq();
      (void)!write(out, &first, sizeof first);
      std::vector<Position> pos;
      for (uint64_t m = 0;; ++m) {  // msg m has seq first + m, except that acks take seqs too
        auto a = s.append_message(round, m, {body_of(round, m)});
        pos.push_back(a.pos);
        if (m % 3 == 2) s.append_ack(round, m - 2, pos[m - 2]);  // ids divisible by 3 get acked
        if (m % 20 == 0) {
          s.flush();
          // A publisher confirm window of ~3,000: keeps the journal (and the test) small.
          while (a.seq > confirmed + 3000) std::this_thread::sleep_for(50us);
        }
      }
    }
    close(fds[1]);
    uint64_t first = 0, durable = 0, v;
    ASSERT_EQ(read(fds[0], &first, sizeof first), static_cast<ssize_t>(sizeof first));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20 + rng() % 100);
    while (std::chrono::steady_clock::now() < deadline &&
           read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v))
      durable = std::max(durable, v);
    kill(pid, SIGKILL);
    while (read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v))
      durable = std::max(durable, v);
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << status;
    ASSERT_GT(durable, first) << "round " << round << ": no confirm before the kill";

    auto s = open();
    // Replay the child's seq pattern: message m, then an ack after every third message.
    uint64_t seq = first;
    std::vector<uint64_t> must;  // msg ids durable and never acked
    for (uint64_t m = 0; seq <= durable; ++m) {
      if (m % 3 != 0) must.push_back(m);
      seq += (m % 3 == 2) ? 2 : 1;
    }
    std::set<uint64_t> present;
    for (auto& g : got_)
      if (g.queue_id == round) {
        present.insert(g.msg_id);
        ASSERT_EQ(g.body, body_of(round, g.msg_id));
      }
    for (uint64_t m : must) ASSERT_TRUE(present.count(m)) << "round " << round << " lost msg " << m;
    RecordProperty("confirmed_round_" + std::to_string(round), static_cast<int>(must.size()));
    // Consume everything, so the next child recovers a small journal and GC runs across crashes.
    for (auto& g : got_) s->append_ack(g.queue_id, g.msg_id, g.pos);
  }
}

}  // namespace
}  // namespace warren::store
