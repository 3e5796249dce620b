// The MQTT retained-message store (mqtt/retained_store.h): kept across a reopen, cleared by an
// empty payload, matched by filters, 5.0 properties and expiry kept, and a store written
// before those columns existed opened and upgraded.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "mqtt/retained_store.h"

namespace warren::mqtt {
namespace {

class RetainedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("warren-retained-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<RetainedStore> open() {
    auto s = RetainedStore::open(dir_.string());
    EXPECT_TRUE(s) << (s ? "" : s.error());
    return s ? std::move(*s) : nullptr;
  }

  std::vector<std::string> topics(RetainedStore& s, std::string_view filter) {
    std::vector<std::string> out;
    s.for_each_match("/", filter, [&](const std::string& t, const RetainedMessage&) {
      out.push_back(t);
    });
    return out;
  }

  std::filesystem::path dir_;
};

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

TEST_F(RetainedStoreTest, KeptAcrossReopenWithPropertiesAndExpiry) {
  {
    auto s = open();
    s->retain("/", "a/b", 1, "one", "props", 0);
    s->retain("/", "a/c", 0, "two");
    s->retain("/", "a/old", 0, "gone", "", now_ms() - 1);  // already expired
    s->retain("/", "a/c", 0, "");                            // cleared
  }
  auto s = open();
  EXPECT_EQ(s->size(), 2u);  // the expired one is still stored, but not handed out
  EXPECT_EQ(topics(*s, "a/+"), std::vector<std::string>{"a/b"});
  s->for_each_match("/", "a/b", [](const std::string&, const RetainedMessage& m) {
    EXPECT_EQ(m.qos, 1);
    EXPECT_EQ(m.payload, "one");
    EXPECT_EQ(m.properties, "props");
  });
}

TEST_F(RetainedStoreTest, UpgradesAStoreWithoutThePropertyColumns) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "mqtt_retained.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE retained (vhost TEXT NOT NULL, topic TEXT NOT NULL, qos "
                         "INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (vhost, topic));"
                         "INSERT INTO retained VALUES ('/', 'x/y', 1, x'6869');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    auto s = open();
    EXPECT_EQ(topics(*s, "#"), std::vector<std::string>{"x/y"});
    s->retain("/", "x/z", 0, "new", "p", 0);
  }
  auto s = open();
  EXPECT_EQ(topics(*s, "x/#"), (std::vector<std::string>{"x/y", "x/z"}));
}

}  // namespace
}  // namespace warren::mqtt
