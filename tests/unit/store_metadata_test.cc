// Metadata store: byte-exact round trips of every record kind, upserts, stable queue ids,
// cascading deletes and their atomicity, batches, durability across SIGKILL, and clear errors for
// files that are not (or no longer) a usable store.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/field_table.h"
#include "store/metadata_store.h"

namespace warren::store {
namespace {

using namespace std::string_literals;

template <class T>
::testing::AssertionResult Ok(const Result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().message;
}

::testing::AssertionResult Ok(const Status& s) {
  if (!s) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s->message;
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// Renders a record with its names and arguments as hex, so comparisons are byte-exact and a
// mismatch shows what differs.
std::string show(const ExchangeRecord& e) {
  return "exchange " + hex(e.vhost) + "/" + hex(e.name) + " " + e.type + " d" +
         std::to_string(e.durable) + " a" + std::to_string(e.auto_delete) + " i" +
         std::to_string(e.internal) + " args " + hex(encode_table_body(e.arguments));
}
std::string show(const QueueRecord& q) {
  return "queue " + hex(q.vhost) + "/" + hex(q.name) + " d" + std::to_string(q.durable) + " a" +
         std::to_string(q.auto_delete) + " args " + hex(encode_table_body(q.arguments));
}
std::string show(const BindingRecord& b) {
  return "binding " + hex(b.vhost) + " " + hex(b.source) + " -> " +
         (b.destination_is_queue ? "q:" : "x:") + hex(b.destination) + " key " +
         hex(b.routing_key) + " args " + hex(encode_table_body(b.arguments));
}
template <class Record>
std::vector<std::string> show(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(show(r));
  return out;
}

// A table holding every field type RabbitMQ knows, including values whose bytes are easy to
// mangle (NaN, negative zero, NULs, extreme integers) and nesting.
FieldTable every_field_type() {
  FieldTable inner;
  inner.set("deep", FieldValue(FieldTable{{{"deeper", FieldValue(int64_t(-1))}}}));
  inner.set("v", FieldValue(Void{}));
  FieldTable t;
  t.set("t", FieldValue(true));
  t.set("f0", FieldValue(false));
  t.set("b", FieldValue(int8_t(-128)));
  t.set("B", FieldValue(uint8_t(255)));
  t.set("s", FieldValue(int16_t(-32768)));
  t.set("u", FieldValue(uint16_t(65535)));
  t.set("I", FieldValue(int32_t(std::numeric_limits<int32_t>::min())));
  t.set("i", FieldValue(uint32_t(0xFFFFFFFF)));
  t.set("l", FieldValue(std::numeric_limits<int64_t>::min()));
  t.set("f", FieldValue(std::numeric_limits<float>::quiet_NaN()));
  t.set("f-0", FieldValue(-0.0f));
  t.set("d", FieldValue(-0.0));
  t.set("d-nan", FieldValue(std::nan("0x5")));
  t.set("D", FieldValue(Decimal{3, 123456}));
  t.set("S", FieldValue("text with \0 nul"s));
  t.set("S-empty", FieldValue(""));
  t.set("A",
        FieldValue(FieldArray{FieldValue(int32_t(1)), FieldValue("two"), FieldValue(FieldArray{}),
                              FieldValue(FieldTable{}), FieldValue(ByteArray{"\xFF"s})}));
  t.set("T", FieldValue(Timestamp{1700000000}));
  t.set("F", FieldValue(inner));
  t.set("V", FieldValue(Void{}));
  t.set("x", FieldValue(ByteArray{"\x00\x01\xFE\xFF"s}));
  return t;
}

ExchangeRecord exchange(std::string name, std::string type = "direct", std::string vhost = "/") {
  ExchangeRecord e;
  e.vhost = std::move(vhost);
  e.name = std::move(name);
  e.type = std::move(type);
  return e;
}

QueueRecord queue(std::string name, std::string vhost = "/") {
  QueueRecord q;
  q.vhost = std::move(vhost);
  q.name = std::move(name);
  return q;
}

BindingRecord binding(std::string source, std::string destination, std::string key = "",
                      bool to_queue = true, std::string vhost = "/") {
  BindingRecord b;
  b.vhost = std::move(vhost);
  b.source = std::move(source);
  b.destination = std::move(destination);
  b.destination_is_queue = to_queue;
  b.routing_key = std::move(key);
  return b;
}

// Runs SQL on the database file directly (with the store closed), to inspect it or to plant
// a fault the store must cope with.
void raw_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::string raw_query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

void write_file(const std::string& path, const std::string& bytes, std::streamoff offset = -1) {
  std::fstream f;
  if (offset < 0) {
    f.open(path, std::ios::out | std::ios::binary | std::ios::trunc);
  } else {
    f.open(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
  }
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-metadata-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_path_ = dir_ + "/metadata.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Definitions load_fresh() {
    auto store = MetadataStore::open(dir_);
    EXPECT_TRUE(Ok(store));
    if (!store) return {};
    auto defs = store->load();
    EXPECT_TRUE(Ok(defs));
    return defs ? std::move(*defs) : Definitions{};
  }

  std::string dir_;
  std::string db_path_;
};

// ---- creation and round trips ----

TEST_F(MetadataStoreTest, CreatesDirectoryAndWalDatabaseWithSchemaVersion) {
  const std::string nested = dir_ + "/a/b";
  {
    auto store = MetadataStore::open(nested);
    ASSERT_TRUE(Ok(store));
    EXPECT_EQ(store->path(), nested + "/metadata.db");
    auto defs = store->load();
    ASSERT_TRUE(Ok(defs));
    EXPECT_TRUE(defs->exchanges.empty() && defs->queues.empty() && defs->bindings.empty());
  }
  EXPECT_EQ(raw_query(nested + "/metadata.db", "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw_query(nested + "/metadata.db", "SELECT version FROM schema_version"), "5");
  // Reopening an up-to-date store migrates nothing and keeps one version row.
  ASSERT_TRUE(Ok(MetadataStore::open(nested)));
  EXPECT_EQ(raw_query(nested + "/metadata.db", "SELECT count(*) FROM schema_version"), "1");
}

TEST_F(MetadataStoreTest, EveryRecordKindRoundTripsByteExactAcrossReopen) {
  ExchangeRecord x = exchange("x.all-types", "headers");
  x.durable = true;
  x.auto_delete = true;
  x.internal = true;
  x.arguments = every_field_type();
  ExchangeRecord plain = exchange("x.plain", "fanout");
  plain.auto_delete = false;
  plain.internal = false;

  QueueRecord q = queue("q.all-types", "vhost-2");
  q.auto_delete = true;
  q.arguments = every_field_type();
  q.arguments.set("x-queue-type", FieldValue("classic"));
  QueueRecord odd = queue("\0nul\xFF\xFEnot-utf8 \xC3\xA9"s + std::string(200, 'n'), "\xFF/"s);

  BindingRecord b = binding("x.all-types", "q.all-types", "key.\0.#"s, true, "vhost-2");
  b.arguments = every_field_type();
  BindingRecord e2e = binding("x.all-types", "x.plain", "", false);

  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    ASSERT_TRUE(Ok(store->save_exchange(x)));
    ASSERT_TRUE(Ok(store->save_exchange(plain)));
    auto qid = store->save_queue(q);
    ASSERT_TRUE(Ok(qid));
    q.id = *qid;
    auto oid = store->save_queue(odd);
    ASSERT_TRUE(Ok(oid));
    odd.id = *oid;
    ASSERT_TRUE(Ok(store->save_binding(b)));
    ASSERT_TRUE(Ok(store->save_binding(e2e)));
  }
  Definitions defs = load_fresh();
  EXPECT_EQ(show(defs.exchanges), (std::vector{show(x), show(plain)}));
  EXPECT_EQ(show(defs.queues), (std::vector{show(q), show(odd)}));
  ASSERT_EQ(defs.queues.size(), 2u);
  EXPECT_EQ(defs.queues[0].id, q.id);
  EXPECT_EQ(defs.queues[1].id, odd.id);
  EXPECT_EQ(show(defs.bindings), (std::vector{show(b), show(e2e)}));
  // Decoded values keep their type tags, not only their bytes.
  ASSERT_EQ(defs.exchanges.size(), 2u);
  const FieldValue* bytes = defs.exchanges[0].arguments.find("x");
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->tag(), 'x');
  EXPECT_TRUE(defs.exchanges[1].arguments.empty());
}

// ---- upserts and ids ----

TEST_F(MetadataStoreTest, PoliciesRoundTripReplaceInPlaceAndDelete) {
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    ASSERT_FALSE(store->save_policy({"/", "a", "^q", "queues", 3, R"({"max-length":5})"}));
    ASSERT_FALSE(store->save_policy({"v2", "b", ".*", "all", -1, R"({"message-ttl":10})"}));
    ASSERT_FALSE(store->save_policy({"/", "a", "^r", "exchanges", 4, R"({"expires":9})"}));
    ASSERT_FALSE(store->save_policy({"/", "c", "x", "all", 0, R"({"max-length":1})"}));
    ASSERT_FALSE(store->delete_policy("/", "c"));
  }
  Definitions d = load_fresh();
  ASSERT_EQ(d.policies.size(), 2u);
  EXPECT_EQ(d.policies[0].vhost, "/");
  EXPECT_EQ(d.policies[0].name, "a");
  EXPECT_EQ(d.policies[0].pattern, "^r");
  EXPECT_EQ(d.policies[0].apply_to, "exchanges");
  EXPECT_EQ(d.policies[0].priority, 4);
  EXPECT_EQ(d.policies[0].definition, R"({"expires":9})");
  EXPECT_EQ(d.policies[1].vhost, "v2");
  EXPECT_EQ(d.policies[1].priority, -1);
}

TEST_F(MetadataStoreTest, SaveExchangeReplacesInPlace) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  ExchangeRecord a = exchange("a", "direct");
  ASSERT_TRUE(Ok(store->save_exchange(a)));
  ASSERT_TRUE(Ok(store->save_exchange(exchange("b", "fanout"))));
  a.type = "topic";
  a.auto_delete = true;
  a.arguments.set("alternate-exchange", FieldValue("ae"));
  ASSERT_TRUE(Ok(store->save_exchange(a)));
  ASSERT_TRUE(Ok(store->save_exchange(exchange("a", "direct", "other-vhost"))));

  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->exchanges), (std::vector{show(a), show(exchange("b", "fanout")),
                                                show(exchange("a", "direct", "other-vhost"))}));
}

TEST_F(MetadataStoreTest, SaveQueueReplacesInPlaceAndKeepsItsId) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  QueueRecord a = queue("a");
  auto id_a = store->save_queue(a);
  auto id_b = store->save_queue(queue("b"));
  auto id_a_other_vhost = store->save_queue(queue("a", "v2"));
  ASSERT_TRUE(Ok(id_a) && Ok(id_b) && Ok(id_a_other_vhost));
  EXPECT_NE(*id_a, 0u);
  EXPECT_LT(*id_a, *id_b);
  EXPECT_LT(*id_b, *id_a_other_vhost);

  a.arguments.set("x-max-length", FieldValue(int32_t(10)));
  a.auto_delete = true;
  a.id = 999;  // ignored: the store owns ids
  auto again = store->save_queue(a);
  ASSERT_TRUE(Ok(again));
  EXPECT_EQ(*again, *id_a);

  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  ASSERT_EQ(defs->queues.size(), 3u);
  EXPECT_EQ(show(defs->queues[0]), show(a));
  EXPECT_EQ(defs->queues[0].id, *id_a);
  EXPECT_EQ(defs->queues[1].id, *id_b);
  EXPECT_EQ(defs->queues[2].id, *id_a_other_vhost);
}

TEST_F(MetadataStoreTest, QueueIdsAreStableAcrossReopenAndNeverReused) {
  uint64_t id_keep = 0, id_deleted = 0;
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    auto k = store->save_queue(queue("keep"));
    auto d = store->save_queue(queue("deleted"));
    ASSERT_TRUE(Ok(k) && Ok(d));
    id_keep = *k;
    id_deleted = *d;
    ASSERT_TRUE(Ok(store->delete_queue("/", "deleted")));
  }
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  ASSERT_EQ(defs->queues.size(), 1u);
  EXPECT_EQ(defs->queues[0].id, id_keep);

  auto resaved = store->save_queue(queue("keep"));
  ASSERT_TRUE(Ok(resaved));
  EXPECT_EQ(*resaved, id_keep);
  // The highest id was deleted; a new queue, even of the same name, must not get it again, or
  // messages still tagged with the old id would appear in the new queue.
  auto recreated = store->save_queue(queue("deleted"));
  ASSERT_TRUE(Ok(recreated));
  EXPECT_GT(*recreated, id_deleted);
}

// ---- bindings ----

TEST_F(MetadataStoreTest, SaveBindingIsIdempotentAndKeepsCreationOrder) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  BindingRecord b1 = binding("x", "q", "k1");
  BindingRecord b2 = binding("x", "q", "k2");
  BindingRecord b1_args = b1;
  b1_args.arguments.set("x-match", FieldValue("all"));
  BindingRecord b1_to_exchange = binding("x", "q", "k1", false);

  for (const auto& b : {b1, b2, b1, b1_args, b1_to_exchange, b2, b1_args}) {
    ASSERT_TRUE(Ok(store->save_binding(b)));
  }
  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->bindings),
            (std::vector{show(b1), show(b2), show(b1_args), show(b1_to_exchange)}));

  ASSERT_TRUE(Ok(store->delete_binding(b1)));
  ASSERT_TRUE(Ok(store->delete_binding(b1)));  // already gone: not an error
  ASSERT_TRUE(Ok(store->delete_binding(binding("nope", "nope"))));
  defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->bindings), (std::vector{show(b2), show(b1_args), show(b1_to_exchange)}));
}

// ---- cascading deletes ----

TEST_F(MetadataStoreTest, DeleteQueueRemovesOnlyItsBindings) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  ASSERT_TRUE(Ok(store->save_queue(queue("q"))));
  ASSERT_TRUE(Ok(store->save_queue(queue("q", "v2"))));
  const BindingRecord gone1 = binding("x", "q", "a");
  const BindingRecord gone2 = binding("y", "q", "b");
  const BindingRecord to_exchange_named_q = binding("x", "q", "c", false);
  const BindingRecord other_vhost = binding("x", "q", "a", true, "v2");
  const BindingRecord from_q_named_exchange = binding("q", "r", "d");
  for (const auto& b : {gone1, to_exchange_named_q, gone2, other_vhost, from_q_named_exchange}) {
    ASSERT_TRUE(Ok(store->save_binding(b)));
  }
  ASSERT_TRUE(Ok(store->delete_queue("/", "q")));
  ASSERT_TRUE(Ok(store->delete_queue("/", "never-existed")));

  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->queues), (std::vector{show(queue("q", "v2"))}));
  EXPECT_EQ(show(defs->bindings), (std::vector{show(to_exchange_named_q), show(other_vhost),
                                               show(from_q_named_exchange)}));
}

TEST_F(MetadataStoreTest, DeleteExchangeRemovesBindingsItIsSourceOrDestinationOf) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  ASSERT_TRUE(Ok(store->save_exchange(exchange("x"))));
  ASSERT_TRUE(Ok(store->save_exchange(exchange("y"))));
  const BindingRecord x_to_q = binding("x", "q");
  const BindingRecord y_to_x = binding("y", "x", "", false);
  const BindingRecord x_to_y = binding("x", "y", "", false);
  const BindingRecord y_to_q = binding("y", "q");
  const BindingRecord y_to_queue_named_x = binding("y", "x", "", true);
  const BindingRecord other_vhost = binding("x", "q", "", true, "v2");
  for (const auto& b : {x_to_q, y_to_x, x_to_y, y_to_q, y_to_queue_named_x, other_vhost}) {
    ASSERT_TRUE(Ok(store->save_binding(b)));
  }
  ASSERT_TRUE(Ok(store->delete_exchange("/", "x")));

  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->exchanges), (std::vector{show(exchange("y"))}));
  EXPECT_EQ(show(defs->bindings),
            (std::vector{show(y_to_q), show(y_to_queue_named_x), show(other_vhost)}));
}

// A trigger planted in the file makes the final DELETE of the cascade fail after the bindings
// were already deleted; the whole operation must then be undone.
TEST_F(MetadataStoreTest, FailedCascadingDeleteLeavesEverythingInPlace) {
  const BindingRecord x_to_q = binding("x", "q");
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    ASSERT_TRUE(Ok(store->save_exchange(exchange("x"))));
    ASSERT_TRUE(Ok(store->save_queue(queue("q"))));
    ASSERT_TRUE(Ok(store->save_binding(x_to_q)));
  }
  raw_sql(db_path_,
          "CREATE TRIGGER fail_queue BEFORE DELETE ON queues BEGIN SELECT RAISE(ABORT, 'injected "
          "queue failure'); END;"
          "CREATE TRIGGER fail_exchange BEFORE DELETE ON exchanges BEGIN SELECT RAISE(ABORT, "
          "'injected exchange failure'); END;");

  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    Status s = store->delete_queue("/", "q");
    ASSERT_TRUE(s.has_value());
    EXPECT_NE(s->message.find("injected queue failure"), std::string::npos) << s->message;
    EXPECT_NE(s->message.find("queue 'q'"), std::string::npos) << s->message;
    s = store->delete_exchange("/", "x");
    ASSERT_TRUE(s.has_value());
    EXPECT_NE(s->message.find("injected exchange failure"), std::string::npos) << s->message;

    auto defs = store->load();
    ASSERT_TRUE(Ok(defs));
    EXPECT_EQ(defs->queues.size(), 1u);
    EXPECT_EQ(defs->exchanges.size(), 1u);
    EXPECT_EQ(show(defs->bindings), (std::vector{show(x_to_q)}));
    // The store is still usable after the failures.
    ASSERT_TRUE(Ok(store->save_queue(queue("after"))));
  }
  EXPECT_EQ(load_fresh().queues.size(), 2u);
}

// ---- batches ----

TEST_F(MetadataStoreTest, CommittedBatchAppliesEveryWrite) {
  std::vector<uint64_t> ids;
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    auto batch = store->begin();
    ASSERT_TRUE(Ok(batch));
    ASSERT_TRUE(Ok(store->save_exchange(exchange("x"))));
    for (int i = 0; i < 100; ++i) {
      auto id = store->save_queue(queue("q" + std::to_string(i)));
      ASSERT_TRUE(Ok(id));
      ids.push_back(*id);
      ASSERT_TRUE(Ok(store->save_binding(binding("x", "q" + std::to_string(i)))));
    }
    ASSERT_TRUE(Ok(store->delete_queue("/", "q99")));
    // Reads inside the batch see its writes.
    auto inside = store->load();
    ASSERT_TRUE(Ok(inside));
    EXPECT_EQ(inside->queues.size(), 99u);
    ASSERT_TRUE(Ok(batch->commit()));
    Status again = batch->commit();
    EXPECT_TRUE(again.has_value()) << "a finished batch cannot be committed twice";
  }
  Definitions defs = load_fresh();
  ASSERT_EQ(defs.queues.size(), 99u);
  for (size_t i = 0; i < defs.queues.size(); ++i) {
    EXPECT_EQ(defs.queues[i].name, "q" + std::to_string(i));
    EXPECT_EQ(defs.queues[i].id, ids[i]);
  }
  EXPECT_EQ(defs.bindings.size(), 99u);
  EXPECT_EQ(defs.exchanges.size(), 1u);
}

TEST_F(MetadataStoreTest, BatchDestroyedWithoutCommitRollsBack) {
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    ASSERT_TRUE(Ok(store->save_queue(queue("before"))));
    ASSERT_TRUE(Ok(store->save_binding(binding("x", "before"))));
    {
      auto batch = store->begin();
      ASSERT_TRUE(Ok(batch));
      ASSERT_TRUE(Ok(store->save_queue(queue("in-batch"))));
      ASSERT_TRUE(Ok(store->save_exchange(exchange("in-batch"))));
      ASSERT_TRUE(Ok(store->delete_queue("/", "before")));
      auto moved = std::move(*batch);  // moving hands the open transaction over
      EXPECT_TRUE(batch->commit().has_value());
    }  // `moved` is destroyed here without commit

    auto defs = store->load();
    ASSERT_TRUE(Ok(defs));
    EXPECT_EQ(show(defs->queues), (std::vector{show(queue("before"))}));
    EXPECT_TRUE(defs->exchanges.empty());
    EXPECT_EQ(defs->bindings.size(), 1u);

    // Writes after the abandoned batch are ordinary durable writes again.
    ASSERT_TRUE(Ok(store->save_queue(queue("after"))));
  }
  Definitions reloaded = load_fresh();
  EXPECT_EQ(show(reloaded.queues), (std::vector{show(queue("before")), show(queue("after"))}));
}

TEST_F(MetadataStoreTest, OnlyOneBatchAtATime) {
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  auto first = store->begin();
  ASSERT_TRUE(Ok(first));
  auto second = store->begin();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("already open"), std::string::npos);
  ASSERT_TRUE(Ok(first->commit()));
  auto third = store->begin();
  ASSERT_TRUE(Ok(third));
}

TEST_F(MetadataStoreTest, FailedWriteFailsTheWholeBatch) {
  {
    auto store = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(store));
    ASSERT_TRUE(Ok(store->save_queue(queue("q"))));
  }
  raw_sql(
      db_path_,
      "CREATE TRIGGER fail_queue BEFORE DELETE ON queues BEGIN SELECT RAISE(ABORT, 'injected'); "
      "END;");
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  {
    auto batch = store->begin();
    ASSERT_TRUE(Ok(batch));
    ASSERT_TRUE(Ok(store->save_queue(queue("a"))));
    EXPECT_TRUE(store->delete_queue("/", "q").has_value());
    auto later = store->save_queue(queue("b"));
    ASSERT_FALSE(later.ok()) << "writes after a failure in the batch must not apply";
    EXPECT_NE(later.error().message.find("earlier write"), std::string::npos)
        << later.error().message;
    Status commit = batch->commit();
    ASSERT_TRUE(commit.has_value());
    EXPECT_NE(commit->message.find("injected"), std::string::npos) << commit->message;
  }
  auto defs = store->load();
  ASSERT_TRUE(Ok(defs));
  EXPECT_EQ(show(defs->queues), (std::vector{show(queue("q"))}));
}

// ---- fsync accounting ----

// Counts xSync calls (fsync/fdatasync) that SQLite makes on any file, by installing a default VFS
// that is the platform VFS with xSync wrapped. A SIGKILL test cannot tell a write that reached
// the disk from one that only reached the page cache; this can.
// The platform VFS gives database and journal/WAL files different method tables; each one seen
// gets a copy with xSync wrapped.
struct WrappedMethods {
  const sqlite3_io_methods* original = nullptr;
  sqlite3_io_methods counting{};
};

class SyncCounter {
 public:
  SyncCounter() : real_(sqlite3_vfs_find(nullptr)) {
    vfs_ = *real_;
    vfs_.zName = "warren-sync-counter";
    vfs_.pNext = nullptr;
    vfs_.xOpen = &SyncCounter::open;
    real_vfs = real_;
    count = 0;
    sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
  }
  ~SyncCounter() {
    sqlite3_vfs_register(real_, /*makeDflt=*/1);
    sqlite3_vfs_unregister(&vfs_);
  }
  int syncs() const { return count; }

 private:
  static int open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out) {
    int rc = real_vfs->xOpen(real_vfs, name, file, flags, out);
    if (rc != SQLITE_OK || file->pMethods == nullptr) return rc;
    for (WrappedMethods& w : tables) {
      if (w.original == nullptr) {
        w.original = file->pMethods;
        w.counting = *file->pMethods;
        w.counting.xSync = &SyncCounter::sync;
      }
      if (w.original == file->pMethods) {
        file->pMethods = &w.counting;
        return rc;
      }
    }
    ADD_FAILURE() << "more method tables than SyncCounter can wrap";
    return rc;
  }
  static int sync(sqlite3_file* file, int flags) {
    ++count;
    for (const WrappedMethods& w : tables) {
      if (file->pMethods == &w.counting) return w.original->xSync(file, flags);
    }
    return SQLITE_IOERR_FSYNC;
  }

  static inline sqlite3_vfs* real_vfs = nullptr;
  static inline std::array<WrappedMethods, 4> tables{};
  static inline int count = 0;
  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
};

TEST_F(MetadataStoreTest, EveryWriteIsFsyncedAndABatchOnceAtCommit) {
  SyncCounter counter;
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));

  for (int i = 0; i < 20; ++i) {
    const int before = counter.syncs();
    const std::string name = "q" + std::to_string(i);
    ASSERT_TRUE(Ok(store->save_queue(queue(name))));
    EXPECT_EQ(counter.syncs() - before, 1) << "save_queue " << i;
    ASSERT_TRUE(Ok(store->save_binding(binding("x", name))));
    EXPECT_EQ(counter.syncs() - before, 2) << "save_binding " << i;
  }
  int before = counter.syncs();
  ASSERT_TRUE(Ok(store->delete_queue("/", "q0")));
  EXPECT_EQ(counter.syncs() - before, 1) << "a cascading delete is one transaction";

  auto batch = store->begin();
  ASSERT_TRUE(Ok(batch));
  before = counter.syncs();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(Ok(store->save_queue(queue("batched" + std::to_string(i)))));
  }
  EXPECT_EQ(counter.syncs(), before) << "nothing is synced before the batch commits";
  ASSERT_TRUE(Ok(batch->commit()));
  EXPECT_EQ(counter.syncs() - before, 1);
}

// ---- durability after a crash ----

// The child writes queues one call at a time and reports each completed call through a pipe;
// the parent SIGKILLs it mid-stream. Every reported write must be there after reopening.
TEST_F(MetadataStoreTest, EveryReturnedWriteSurvivesSigkill) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto store = MetadataStore::open(dir_);
    if (!store) _exit(2);
    for (uint32_t i = 0;; ++i) {
      const std::string name = "q" + std::to_string(i);
      if (!store->save_queue(queue(name))) _exit(3);
      if (store->save_binding(binding("x", name))) _exit(4);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(5);
    }
  }
  close(fds[1]);
  uint32_t acked = 0, i = 0;
  while (acked < 100 && read(fds[0], &i, sizeof i) == sizeof i) acked = i + 1;
  kill(pid, SIGKILL);
  while (read(fds[0], &i, sizeof i) == sizeof i) acked = i + 1;  // reports sent before the kill
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  ASSERT_GE(acked, 100u);

  Definitions defs = load_fresh();
  ASSERT_GE(defs.queues.size(), acked);
  ASSERT_GE(defs.bindings.size(), acked);
  for (uint32_t k = 0; k < acked; ++k) {
    EXPECT_EQ(defs.queues[k].name, "q" + std::to_string(k));
    EXPECT_EQ(defs.queues[k].id, k + 1);
    EXPECT_EQ(defs.bindings[k].destination, "q" + std::to_string(k));
  }
}

// A committed batch survives the crash; the batch open at the time of the crash leaves nothing.
TEST_F(MetadataStoreTest, CrashDuringBatchKeepsCommittedBatchOnly) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = MetadataStore::open(dir_);
    if (!store) _exit(2);
    {
      auto batch = store->begin();
      if (!batch) _exit(3);
      for (int i = 0; i < 10; ++i) {
        if (!store->save_queue(queue("committed" + std::to_string(i)))) _exit(4);
      }
      if (batch->commit()) _exit(5);
    }
    auto batch = store->begin();
    if (!batch) _exit(6);
    for (int i = 0; i < 10; ++i) {
      if (!store->save_queue(queue("lost" + std::to_string(i)))) _exit(7);
    }
    if (store->delete_queue("/", "committed0")) _exit(8);
    raise(SIGKILL);
    _exit(9);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  Definitions defs = load_fresh();
  ASSERT_EQ(defs.queues.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(defs.queues[i].name, "committed" + std::to_string(i));
}

// ---- files that are not a usable store ----

TEST_F(MetadataStoreTest, NonSqliteFileIsAClearError) {
  write_file(db_path_, "this is a definitions.json, not a database\n" + std::string(5000, 'x'));
  auto store = MetadataStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find(db_path_), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("not a database"), std::string::npos)
      << store.error().message;
}

// Fills a store with enough queues to span many pages and closes it cleanly, which checkpoints
// the WAL into the main file, so damage to that file is damage to the data.
void fill_and_close(const std::string& dir) {
  auto store = MetadataStore::open(dir);
  ASSERT_TRUE(Ok(store));
  auto batch = store->begin();
  ASSERT_TRUE(Ok(batch));
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(Ok(store->save_queue(queue("queue-with-a-longish-name-" + std::to_string(i)))));
  }
  ASSERT_TRUE(Ok(batch->commit()));
}

TEST_F(MetadataStoreTest, DamagedDatabaseIsAClearError) {
  fill_and_close(dir_);
  ASSERT_GT(std::filesystem::file_size(db_path_), 16u * 4096);
  write_file(db_path_, std::string(4 * 4096, '\x5A'), 8 * 4096);  // pages 9-12 overwritten

  auto store = MetadataStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find(db_path_), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("damaged"), std::string::npos) << store.error().message;
}

TEST_F(MetadataStoreTest, TruncatedDatabaseIsAClearError) {
  fill_and_close(dir_);
  std::filesystem::resize_file(db_path_, 5 * 4096);

  auto store = MetadataStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("damaged"), std::string::npos) << store.error().message;
}

TEST_F(MetadataStoreTest, UndecodableArgumentsAreALoadError) {
  ASSERT_TRUE(Ok(MetadataStore::open(dir_).value().save_queue(queue("q"))));
  raw_sql(db_path_, "UPDATE queues SET arguments = x'03616263ff'");  // key "abc", unknown tag
  auto store = MetadataStore::open(dir_);
  ASSERT_TRUE(Ok(store));
  auto defs = store->load();
  ASSERT_FALSE(defs.ok());
  EXPECT_NE(defs.error().message.find("queue 'q' in vhost '/'"), std::string::npos)
      << defs.error().message;
}

TEST_F(MetadataStoreTest, ForeignSqliteDatabaseIsRefused) {
  raw_sql(db_path_, "CREATE TABLE something_else (x INTEGER)");
  auto store = MetadataStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("not a Warren metadata store"), std::string::npos)
      << store.error().message;
}

TEST_F(MetadataStoreTest, DatabaseFromNewerWarrenIsRefused) {
  ASSERT_TRUE(Ok(MetadataStore::open(dir_)));
  raw_sql(db_path_, "UPDATE schema_version SET version = 99");
  auto store = MetadataStore::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
}

TEST_F(MetadataStoreTest, UnusableDirectoryIsAClearError) {
  const std::string file = dir_ + "/plain-file";
  write_file(file, "x");
  for (const std::string& dir : {file, file + "/sub"}) {
    auto store = MetadataStore::open(dir);
    ASSERT_FALSE(store.ok()) << dir;
    EXPECT_NE(store.error().message.find("plain-file"), std::string::npos) << store.error().message;
  }
}

TEST_F(MetadataStoreTest, SecondOpenWhileOpenIsRefused) {
  {
    auto first = MetadataStore::open(dir_);
    ASSERT_TRUE(Ok(first));
    auto second = MetadataStore::open(dir_);
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().message.find("locked"), std::string::npos) << second.error().message;
  }
  EXPECT_TRUE(Ok(MetadataStore::open(dir_)));  // closing the first released the lock
}

}  // namespace
}  // namespace warren::store
