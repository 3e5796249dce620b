// Global runtime parameters: the store's table and its migration from schema 4, the broker API
// over a real store (values kept parsed and canonical, errors, a restart), and the text forms
// (RabbitMQ's JSON encoding with Erlang floats; parse errors as rabbitmqctl reports them).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "broker/broker.h"
#include "broker/global_parameters.h"
#include "store/metadata_store.h"

namespace warren::broker {
namespace {

namespace json = boost::json;

void raw_sql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  std::string text = message ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << text;
}

std::string raw_query(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  std::string out;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW)
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

class GlobalParametersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-gparams-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    broker_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  store::MetadataStore& open_store() {
    broker_.reset();
    store_.reset();
    auto s = store::MetadataStore::open(dir_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    store_ = std::make_unique<store::MetadataStore>(std::move(*s));
    return *store_;
  }

  // (Re)starts a broker over dir_, as main does.
  Broker& start() {
    open_store();
    auto defs = store_->load();
    EXPECT_TRUE(defs.ok());
    broker_ = std::make_unique<Broker>(io_, Limits{}, auth::UserStore{}, store_.get());
    EXPECT_FALSE(broker_->restore_access(*defs, DefaultAccess{}));
    EXPECT_FALSE(broker_->restore_global_parameters());
    return *broker_;
  }

  std::string db_path() const { return dir_ + "/metadata.db"; }

  std::string dir_;
  boost::asio::io_context io_;
  std::unique_ptr<store::MetadataStore> store_;
  std::unique_ptr<Broker> broker_;
};

// ---- the store

TEST_F(GlobalParametersTest, StoreRoundTripsReplacesAndDeletesByName) {
  {
    store::MetadataStore& s = open_store();
    ASSERT_FALSE(s.save_global_parameter({"zeta", R"({"a":1})"}));
    ASSERT_FALSE(s.save_global_parameter({"alpha", "1"}));
    ASSERT_FALSE(s.save_global_parameter({"zeta", R"("replaced")"}));
    ASSERT_FALSE(s.save_global_parameter({"gone", "null"}));
    ASSERT_FALSE(s.delete_global_parameter("gone"));
    ASSERT_FALSE(s.delete_global_parameter("never-set"));  // nothing to do, not an error
  }
  auto loaded = open_store().load_global_parameters();
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].name, "alpha");
  EXPECT_EQ((*loaded)[0].value, "1");
  EXPECT_EQ((*loaded)[1].name, "zeta");
  EXPECT_EQ((*loaded)[1].value, R"("replaced")");
}

TEST_F(GlobalParametersTest, StoreOfSchema4IsMigratedKeepingItsData) {
  // A store as the previous Warren left it: schema 4, with a policy and a topic permission.
  {
    store::MetadataStore& s = open_store();
    ASSERT_FALSE(s.save_policy({"/", "p", "^q", "queues", 1, R"({"max-length":5})"}));
    ASSERT_FALSE(s.save_topic_permission({"u", "/", "amq.topic", "^a", "^b"}));
  }
  store_.reset();
  raw_sql(db_path(), "DROP TABLE global_parameters; UPDATE schema_version SET version = 4;");
  ASSERT_EQ(raw_query(db_path(), "SELECT version FROM schema_version"), "4");

  open_store();
  store_.reset();  // the store holds its file exclusively while open
  EXPECT_EQ(raw_query(db_path(), "SELECT version FROM schema_version"), "5");
  EXPECT_EQ(raw_query(db_path(), "SELECT count(*) FROM schema_version"), "1");
  store::MetadataStore& s = open_store();
  auto defs = s.load();
  ASSERT_TRUE(defs.ok());
  ASSERT_EQ(defs->policies.size(), 1u);
  EXPECT_EQ(defs->policies[0].definition, R"({"max-length":5})");
  auto access = s.load_access();
  ASSERT_TRUE(access.ok());
  ASSERT_EQ(access->topic_permissions.size(), 1u);
  EXPECT_EQ(access->topic_permissions[0].write, "^a");
  auto none = s.load_global_parameters();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_FALSE(s.save_global_parameter({"cluster_name", R"("c1")"}));
  auto one = open_store().load_global_parameters();
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].value, R"("c1")");
}

// ---- the broker

TEST_F(GlobalParametersTest, BrokerKeepsValuesParsedAndCanonicalAcrossARestart) {
  Broker& b = start();
  EXPECT_EQ(b.global_parameter("mqtt_port_to_vhost_mapping"), nullptr);
  ASSERT_FALSE(b.set_global_parameter("mqtt_port_to_vhost_mapping",
                                      json::parse(R"({"8883":"vh2","1883":"/"})")));
  ASSERT_FALSE(b.set_global_parameter("n", json::value(42)));
  const json::value* m = b.global_parameter("mqtt_port_to_vhost_mapping");
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->is_object());
  EXPECT_EQ(m->get_object().at("1883").as_string(), "/");
  // Keys sorted, as RabbitMQ keeps an object.
  EXPECT_EQ(json::serialize(*m), R"({"1883":"/","8883":"vh2"})");

  // Setting again replaces the value where it is: a pointer taken before sees the new value.
  ASSERT_FALSE(b.set_global_parameter("n", json::value("x")));
  const json::value* n = b.global_parameter("n");
  ASSERT_FALSE(b.set_global_parameter("n", json::parse("[1,{\"b\":1,\"a\":2}]")));
  EXPECT_EQ(b.global_parameter("n"), n);
  EXPECT_EQ(json::serialize(*n), R"([1,{"a":2,"b":1}])");

  Broker& again = start();
  ASSERT_EQ(again.list_global_parameters().size(), 2u);
  ASSERT_NE(again.global_parameter("mqtt_port_to_vhost_mapping"), nullptr);
  EXPECT_EQ(json::serialize(*again.global_parameter("mqtt_port_to_vhost_mapping")),
            R"({"1883":"/","8883":"vh2"})");
  EXPECT_EQ(json::serialize(*again.global_parameter("n")), R"([1,{"a":2,"b":1}])");

  ASSERT_FALSE(again.clear_global_parameter("n"));
  EXPECT_EQ(again.global_parameter("n"), nullptr);
  Status s = again.clear_global_parameter("n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kNotFound);
  EXPECT_EQ(s->text, "Parameter does not exist");
  EXPECT_EQ(start().global_parameter("n"), nullptr);
}

TEST_F(GlobalParametersTest, AStoredValueThatNoLongerParsesIsSkipped) {
  {
    store::MetadataStore& s = open_store();
    ASSERT_FALSE(s.save_global_parameter({"bad", "{not json"}));
    ASSERT_FALSE(s.save_global_parameter({"good", "true"}));
  }
  Broker& b = start();
  EXPECT_EQ(b.global_parameter("bad"), nullptr);
  ASSERT_NE(b.global_parameter("good"), nullptr);
  EXPECT_TRUE(b.global_parameter("good")->as_bool());
}

// ---- text forms

TEST(GlobalParameterText, AsRabbitJsonEncodesWithErlangFloats) {
  auto text = [](const char* json_text) { return rabbit_json_text(json::parse(json_text)); };
  // Captured from rabbitmqctl 3.10.8's list_global_parameters.
  EXPECT_EQ(text("[1.5, 1e3, 100.0, 0.0001, 1E-7, -2.25]"),
            "[1.5,1.0e3,100.0,0.0001,1.0e-7,-2.25]");
  // float_to_binary(F, [short]) as Erlang/OTP prints them.
  EXPECT_EQ(text("[10.0, 123456.0, 1234567.0, 1e15, 0.1, 123.456, -0.0, 5e-324]"),
            "[10.0,123456.0,1234567.0,1.0e15,0.1,123.456,-0.0,5.0e-324]");
  EXPECT_EQ(text(R"({"a":[1,2,{"y":null,"z":true}],"b":"t\"é"})"),
            R"({"a":[1,2,{"y":null,"z":true}],"b":"t\"é"})");
  EXPECT_EQ(text("12345678901234567890"), "12345678901234567890");
}

TEST(GlobalParameterText, ParseErrorsAreRabbitMqsBadarg) {
  for (const char* bad : {"{oops", "abc", "", "[1,", "'single'"}) {
    auto r = parse_global_parameter(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().text, "JSON decoding error. Reason: badarg");
  }
  auto ok = parse_global_parameter(R"( {"b":1} )");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->is_object());
}

}  // namespace
}  // namespace warren::broker
