// The broker's use of the message journal: which messages a queue writes, what an ack or purge
// records, recovery into queues, and paging bodies out past the RAM budget.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "broker/message_journal.h"
#include "broker/queue.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;

MessageRef persistent(std::string_view body, std::string_view props = "") {
  MessageRef m = Message::create("ex", "rk", props, body.size());
  m->append_body(body);
  m->delivery_mode = 2;
  return m;
}

class BrokerJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-journal-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A journal over dir_ and one durable queue (store id 7) restored from it.
  struct Instance {
    boost::asio::io_context io;
    // Keeps run_one_for() waiting for reports the sync thread posts (without it the io_context
    // stops for good the first time it runs out of work).
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
    std::vector<store::Completion> completions;
    int dirty = 0;
    MessageJournal journal{io, [this] { ++dirty; },
                           [this](const store::Completion& c) { completions.push_back(c); }};
    FakeScheduler scheduler;
    QueueRef queue;
    store::RecoveryReport report;
  };
  std::unique_ptr<Instance> open(uint32_t segment_size = 0) {
    auto in = std::make_unique<Instance>();
    Queue::Options o;
    o.durable = true;
    o.store_id = 7;
    in->queue = Queue::create("/", "q", o, &in->scheduler);
    in->queue->set_journal(&in->journal);
    store::MessageStoreOptions opts;
    opts.dir = dir_;
    if (segment_size != 0) opts.segment_size = segment_size;
    Instance* raw = in.get();
    EXPECT_FALSE(in->journal.open(opts, [raw](uint64_t id) -> Queue* {
      return id == 7 ? raw->queue.get() : nullptr;
    }, &in->report));
    return in;
  }
  // Runs the io_context until the journal reported seq as synced.
  static void wait_synced(Instance& in, uint64_t seq) {
    in.journal.flush();
    while (in.completions.empty() || in.completions.back().last_seq < seq)
      in.io.run_one_for(std::chrono::seconds(10));
  }

  std::string dir_;
};

TEST(MessageJournalCodec, RecordBodyRoundTripsEveryField) {
  std::string props("\x10\x00\x02", 3);  // delivery_mode=2; passed through as received
  MessageRef m = Message::create("exchange.x", "routing.key", props, 5);
  m->append_body("hello");
  std::string record = MessageJournal::encode_header(*m) + std::string(m->packed());
  MessageRef back = MessageJournal::decode(record);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->exchange(), "exchange.x");
  EXPECT_EQ(back->routing_key(), "routing.key");
  EXPECT_EQ(back->raw_properties(), props);
  EXPECT_EQ(back->body(), "hello");
  EXPECT_EQ(back->delivery_mode, 2);
  EXPECT_FALSE(MessageJournal::decode(record.substr(0, 8)));  // lengths point past the end
  EXPECT_FALSE(MessageJournal::decode("abc"));
}

TEST_F(BrokerJournalTest, OnlyPersistentMessagesAreWrittenAndConfirmSeqsAscend) {
  auto in = open();
  auto a = in->queue->enqueue(persistent("p1"));
  MessageRef transient = testing::make_message("t1");
  auto b = in->queue->enqueue(transient);
  auto c = in->queue->enqueue(persistent("p2"));
  EXPECT_GT(a.journal_seq, 0u);
  EXPECT_EQ(b.journal_seq, 0u);
  EXPECT_GT(c.journal_seq, a.journal_seq);
  EXPECT_FALSE(a.journal_failed || b.journal_failed || c.journal_failed);
  EXPECT_EQ(in->dirty, 1);  // one flush request per turn
  wait_synced(*in, c.journal_seq);
  EXPECT_FALSE(in->completions.back().error);
}

TEST_F(BrokerJournalTest, RecoveryRestoresUnackedMessagesInOrderAsRedelivered) {
  {
    auto in = open();
    uint64_t last = 0;
    for (int i = 0; i < 10; ++i) last = in->queue->enqueue(persistent("m" + std::to_string(i))).journal_seq;
    QueuedMessage first = in->queue->pop();  // consumed and acked
    in->queue->discard(first);
    QueuedMessage second = in->queue->pop();  // delivered, never acked
    EXPECT_EQ(second.msg->body(), "m1");
    wait_synced(*in, last);
    in->journal.flush();
    in->journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->report.messages, 9u);
  ASSERT_EQ(in->queue->message_count(), 9u);
  for (int i = 1; i < 10; ++i) {
    QueuedMessage m = in->queue->pop();
    ASSERT_TRUE(m.msg);
    EXPECT_EQ(m.msg->body(), "m" + std::to_string(i));
    EXPECT_TRUE(m.redelivered);
    EXPECT_EQ(m.msg->exchange(), "ex");
  }
  // New publishes continue after the recovered msg ids (no id reuse while they are live).
  in->queue->enqueue(persistent("new"));
  EXPECT_EQ(in->queue->pop().seq, 11u);
}

TEST_F(BrokerJournalTest, CleanStopMarksLimitRedeliveredToDeliveredMessages) {
  {
    auto in = open();
    uint64_t last = 0;
    for (int i = 0; i < 4; ++i) last = in->queue->enqueue(persistent("m" + std::to_string(i))).journal_seq;
    QueuedMessage delivered = in->queue->pop();  // m0 goes out, then its channel closes
    std::vector<QueuedMessage> back;
    back.push_back(std::move(delivered));
    in->queue->requeue(std::move(back));
    wait_synced(*in, last);
    std::vector<store::DeliveryMark> marks;
    in->queue->collect_delivery_marks(&marks);
    ASSERT_EQ(marks.size(), 1u);
    in->journal.close(&marks);
  }
  {
    auto in = open();
    std::vector<bool> flags;
    for (int i = 0; i < 4; ++i) flags.push_back(in->queue->pop().redelivered);
    EXPECT_EQ(flags, (std::vector<bool>{true, false, false, false}));
    in->journal.close();  // no marks: as after a crash
  }
  auto in = open();  // the marks were consumed by the previous start
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(in->queue->pop().redelivered);
}

TEST_F(BrokerJournalTest, DamagedMarksFileMeansEverythingRedelivered) {
  {
    auto in = open();
    auto a = in->queue->enqueue(persistent("x"));
    wait_synced(*in, a.journal_seq);
    std::vector<store::DeliveryMark> none;
    in->journal.close(&none);
  }
  std::string marks = dir_ + "/msgs/delivered.marks";
  ASSERT_TRUE(std::filesystem::exists(marks));
  std::filesystem::resize_file(marks, std::filesystem::file_size(marks) - 1);
  auto in = open();
  EXPECT_TRUE(in->queue->pop().redelivered);
  EXPECT_FALSE(std::filesystem::exists(marks));
}

TEST_F(BrokerJournalTest, CompactionMovesReadyMessagesAndFreesSparseSegments) {
  const uint32_t kSegment = 4096;
  std::vector<std::string> kept;
  {
    auto in = open(kSegment);
    // A second durable queue whose messages are all consumed interleaves with ours, so every
    // segment ends up holding one live message of ours: sparse.
    Queue::Options o;
    o.durable = true;
    o.store_id = 8;
    QueueRef busy = Queue::create("/", "busy", o, &in->scheduler);
    busy->set_journal(&in->journal);
    uint64_t last = 0;
    for (int i = 0; i < 40; ++i) {
      std::string body = "keep-" + std::to_string(i);
      kept.push_back(body);
      last = in->queue->enqueue(persistent(body + std::string(100, '.'))).journal_seq;
      for (int j = 0; j < 4; ++j) busy->enqueue(persistent(std::string(150, 'b')));
    }
    while (busy->message_count() > 0) busy->discard(busy->pop());
    in->journal.flush();
    wait_synced(*in, last);
    std::vector<uint32_t> sparse = in->journal.sparse_segments();
    ASSERT_GE(sparse.size(), 5u);

    uint64_t copied = in->queue->relocate_from(sparse, uint64_t{1} << 30);
    EXPECT_GT(copied, 0u);
    EXPECT_EQ(in->queue->relocate_from(sparse, uint64_t{1} << 30), 0u) << "already in flight";
    in->journal.flush();
    size_t before = in->completions.size();
    while (in->completions.size() == before) in->io.run_one_for(std::chrono::seconds(10));
    in->journal.flush();  // deletes what the relocations emptied
    auto marker = in->queue->enqueue(persistent("marker"));
    wait_synced(*in, marker.journal_seq);
    for (uint32_t seg : sparse)
      EXPECT_FALSE(std::filesystem::exists(dir_ + "/msgs/" + fmt::format("{:010}.seg", seg))) << seg;
    in->journal.close();
  }
  auto in = open(kSegment);
  EXPECT_EQ(in->report.relocations, 0u) << "the old copies' segments are gone";
  ASSERT_EQ(in->queue->message_count(), kept.size() + 1);
  for (const std::string& body : kept)
    EXPECT_EQ(in->queue->pop().msg->body().substr(0, body.size()), body);
  EXPECT_EQ(in->queue->pop().msg->body(), "marker");
}

TEST_F(BrokerJournalTest, PurgeRecordsAcks) {
  {
    auto in = open();
    uint64_t last = 0;
    for (int i = 0; i < 5; ++i) last = in->queue->enqueue(persistent("x")).journal_seq;
    EXPECT_EQ(in->queue->purge(), 5u);
    in->journal.flush();
    in->journal.close();
    EXPECT_GT(last, 0u);
  }
  auto in = open();
  EXPECT_EQ(in->queue->message_count(), 0u);
}

TEST_F(BrokerJournalTest, ClosedJournalWritesNoAcksSoUnackedMessagesSurviveShutdown) {
  {
    auto in = open();
    in->queue->enqueue(persistent("keep"));
    in->journal.flush();
    QueuedMessage m = in->queue->pop();
    in->journal.close();  // shutdown: the channel's requeue into a dying queue must not ack
    in->queue->mark_deleted();
    std::vector<QueuedMessage> back;
    back.push_back(std::move(m));
    in->queue->requeue(std::move(back));
  }
  auto in = open();
  ASSERT_EQ(in->queue->message_count(), 1u);
  EXPECT_EQ(in->queue->pop().msg->body(), "keep");
}

TEST_F(BrokerJournalTest, BacklogPastTheRamBudgetIsPagedOutAndReadBackInOrder) {
  auto in = open();
  const size_t n = Queue::kRamMessages + 500;
  uint64_t last = 0;
  for (size_t i = 0; i < n; ++i) last = in->queue->enqueue(persistent(std::to_string(i))).journal_seq;
  auto t = in->queue->enqueue(testing::make_message("transient-tail"));  // paged out too
  EXPECT_EQ(t.journal_seq, 0u);  // but its confirm does not wait for the disk
  // Bodies leave RAM only once their records are synced.
  EXPECT_EQ(in->queue->messages_in_ram(), n + 1);
  wait_synced(*in, last + 1);
  EXPECT_EQ(in->queue->messages_in_ram(), Queue::kRamMessages);
  EXPECT_EQ(in->queue->message_count(), n + 1);
  for (size_t i = 0; i < n; ++i) {
    QueuedMessage m = in->queue->pop();
    ASSERT_TRUE(m.msg) << i;
    ASSERT_EQ(m.msg->body(), std::to_string(i));
    EXPECT_EQ(m.msg->routing_key(), "rk");
  }
  EXPECT_EQ(in->queue->pop().msg->body(), "transient-tail");
  EXPECT_EQ(in->queue->messages_in_ram(), 0u);
}

TEST_F(BrokerJournalTest, PagedOutTransientMessagesDoNotComeBackAfterRestart) {
  {
    auto in = open();
    for (size_t i = 0; i < Queue::kRamMessages + 10; ++i)
      in->queue->enqueue(testing::make_message("t" + std::to_string(i)));
    auto p = in->queue->enqueue(persistent("p"));
    wait_synced(*in, p.journal_seq);
    EXPECT_EQ(in->queue->messages_in_ram(), Queue::kRamMessages);
    in->journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->report.messages, 11u);  // read, but only the persistent one is restored
  ASSERT_EQ(in->queue->message_count(), 1u);
  EXPECT_EQ(in->queue->pop().msg->body(), "p");
}

TEST_F(BrokerJournalTest, RecoveryKeepsOnlyTheBudgetInRam) {
  {
    auto in = open();
    uint64_t last = 0;
    for (size_t i = 0; i < Queue::kRamMessages + 100; ++i)
      last = in->queue->enqueue(persistent(std::to_string(i))).journal_seq;
    wait_synced(*in, last);
    in->journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->queue->message_count(), Queue::kRamMessages + 100);
  EXPECT_EQ(in->queue->messages_in_ram(), Queue::kRamMessages);
  for (size_t i = 0; i < Queue::kRamMessages + 100; ++i)
    ASSERT_EQ(in->queue->pop().msg->body(), std::to_string(i));
}

TEST_F(BrokerJournalTest, RecordsOfUnknownQueuesAreDroppedAtRecovery) {
  {
    auto in = open();
    auto a = in->queue->enqueue(persistent("orphan"));
    wait_synced(*in, a.journal_seq);
    in->journal.close();
  }
  {
    // The queue was deleted while the broker was down (or before its acks reached the disk).
    boost::asio::io_context io;
    MessageJournal journal(io, [] {}, [](const store::Completion&) {});
    store::MessageStoreOptions opts;
    opts.dir = dir_;
    store::RecoveryReport report;
    ASSERT_FALSE(journal.open(opts, [](uint64_t) -> Queue* { return nullptr; }, &report));
    EXPECT_EQ(report.messages, 1u);
    journal.close();
  }
  auto in = open();
  EXPECT_EQ(in->queue->message_count(), 0u);
}

TEST_F(BrokerJournalTest, AppendAfterCloseFailsSoThePublishIsNacked) {
  auto in = open();
  in->journal.close();
  auto r = in->queue->enqueue(persistent("late"));
  EXPECT_TRUE(r.journal_failed);
  EXPECT_EQ(in->queue->message_count(), 1u);  // still delivered from RAM
}

}  // namespace
}  // namespace warren::broker
