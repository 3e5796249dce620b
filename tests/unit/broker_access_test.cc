// Broker users/vhosts/permissions API (broker_access.cc) over a real metadata store: RabbitMQ's
// error texts, durability across a reopen, the permission rules, and vhost deletion.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "broker/broker.h"
#include "broker/vhost.h"
#include "store/metadata_store.h"

namespace warren::broker {
namespace {

using auth::Permission;

class BrokerAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "warren-access-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    broker_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)starts a broker over dir_, as main does.
  Broker& start() {
    broker_.reset();
    store_.reset();
    auto s = store::MetadataStore::open(dir_);
    EXPECT_TRUE(s.ok());
    store_ = std::make_unique<store::MetadataStore>(std::move(*s));
    auto defs = store_->load();
    EXPECT_TRUE(defs.ok());
    broker_ = std::make_unique<Broker>(io_, Limits{}, auth::UserStore{}, store_.get());
    EXPECT_FALSE(broker_->restore_access(*defs, DefaultAccess{}));
    return *broker_;
  }

  std::string dir_;
  boost::asio::io_context io_;
  std::unique_ptr<store::MetadataStore> store_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerAccessTest, FirstStartCreatesTheDefaultUserOnceAndKeepsIt) {
  Broker& b = start();
  ASSERT_EQ(b.list_users().size(), 1u);
  EXPECT_EQ(b.list_users()[0].tags, std::vector<std::string>{"administrator"});
  EXPECT_EQ(b.list_vhosts(), std::vector<std::string>{"/"});
  EXPECT_FALSE(b.check_access("guest", "/", Permission::kConfigure, "queue", "anything"));
  ASSERT_FALSE(b.delete_user("guest"));
  Broker& again = start();  // not recreated: the store is no longer empty
  EXPECT_TRUE(again.list_users().empty());
  EXPECT_EQ(again.list_vhosts(), std::vector<std::string>{"/"});
}

TEST_F(BrokerAccessTest, ErrorsCarryRabbitMqTexts) {
  Broker& b = start();
  ASSERT_FALSE(b.add_user("u", "p"));
  Status s = b.add_user("u", "p");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->text, "user 'u' already exists");
  s = b.delete_user("nobody");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kNotFound);
  EXPECT_EQ(s->text, "no such user 'nobody'");
  s = b.set_permissions("u", "nope", {".*", ".*", ".*"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->text, "no such vhost 'nope'");
  s = b.set_permissions("u", "/", {"(", ".*", ".*"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kPreconditionFailed);
}

TEST_F(BrokerAccessTest, UsersPasswordsTagsPermissionsAndLimitsSurviveARestart) {
  Broker& b = start();
  ASSERT_FALSE(b.add_user("u", "old", {"monitoring"}));
  ASSERT_FALSE(b.change_password("u", "new"));
  ASSERT_FALSE(b.set_user_tags("u", {"management", "policymaker"}));
  ASSERT_FALSE(b.add_user("np", ""));
  ASSERT_FALSE(b.create_vhost("v"));
  ASSERT_FALSE(b.set_permissions("u", "v", {"^c", "^w", "^r"}));
  ASSERT_FALSE(b.set_vhost_limits("v", {5, 7}));
  Broker& again = start();
  EXPECT_NE(again.users().authenticate("u", "new"), nullptr);
  EXPECT_EQ(again.users().authenticate("u", "old"), nullptr);
  EXPECT_EQ(again.users().authenticate("np", ""), nullptr);  // no password: no login at all
  EXPECT_EQ(again.users().find("u")->tags,
            (std::vector<std::string>{"management", "policymaker"}));
  EXPECT_EQ(again.list_vhosts(), (std::vector<std::string>{"/", "v"}));
  ASSERT_EQ(again.list_user_permissions("u").size(), 1u);
  EXPECT_EQ(again.list_permissions("v")[0].permissions.write, "^w");
  EXPECT_EQ(again.find_vhost("v")->max_connections, 5);
  EXPECT_EQ(again.find_vhost("v")->max_queues, 7);
}

TEST_F(BrokerAccessTest, PatternsAreUnanchoredEmptyMatchesNothingDefaultExchangeIsAmqDefault) {
  Broker& b = start();
  ASSERT_FALSE(b.add_user("u", "p"));
  ASSERT_FALSE(b.set_permissions("u", "/", {"foo", "", "^amq\\.default$"}));
  EXPECT_FALSE(b.check_access("u", "/", Permission::kConfigure, "queue", "xfoox"));
  EXPECT_TRUE(b.check_access("u", "/", Permission::kConfigure, "queue", "fo"));
  EXPECT_TRUE(b.check_access("u", "/", Permission::kWrite, "queue", "q"));
  EXPECT_FALSE(b.check_access("u", "/", Permission::kRead, "exchange", ""));
  Status s = b.check_access("u", "/", Permission::kRead, "queue", "q");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kAccessRefused);
  EXPECT_EQ(s->text, "access to queue 'q' in vhost '/' refused for user 'u'");
  EXPECT_TRUE(b.check_access("u", "other", Permission::kRead, "queue", "foo"));
  // A change applies to the next check.
  ASSERT_FALSE(b.clear_permissions("u", "/"));
  EXPECT_TRUE(b.check_access("u", "/", Permission::kConfigure, "queue", "xfoox"));
}

TEST_F(BrokerAccessTest, DeletingAVhostDeletesItsDefinitionsAndPermissionsOnly) {
  Broker& b = start();
  ASSERT_FALSE(b.create_vhost("v"));
  for (const char* name : {"v", "/"}) {
    VHost* v = b.find_vhost(name);
    ASSERT_TRUE(v->declare_exchange(ExchangeDeclare{"x", "fanout", false, true, false, false, {}}) == std::nullopt);
    ASSERT_TRUE(v->declare_queue(QueueDeclare{"q", false, true, false, false, {}}, 1).ok());
    ASSERT_TRUE(v->bind_queue("q", "x", "k", FieldTable{}, 1) == std::nullopt);
  }
  ASSERT_FALSE(b.set_permissions("guest", "v", {".*", ".*", ".*"}));
  ASSERT_FALSE(b.delete_vhost("v"));
  EXPECT_EQ(b.find_vhost("v"), nullptr);
  EXPECT_TRUE(b.list_permissions("v").empty());
  Status s = b.delete_vhost("v");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->text, "no such vhost 'v'");
  Broker& again = start();
  EXPECT_EQ(again.list_vhosts(), std::vector<std::string>{"/"});
  EXPECT_NE(again.find_vhost("/")->find_queue("q"), nullptr);
  EXPECT_NE(again.find_vhost("/")->find_exchange("x"), nullptr);
  auto defs = store_->load();
  ASSERT_TRUE(defs.ok());
  for (const auto& q : defs->queues) EXPECT_EQ(q.vhost, "/");
  for (const auto& x : defs->exchanges) EXPECT_NE(x.vhost, "v");
  for (const auto& bd : defs->bindings) EXPECT_EQ(bd.vhost, "/");
}

struct FakeConnection : ClientConnection {
  explicit FakeConnection(std::string v) : vhost(std::move(v)) {}
  std::string_view vhost_name() const override { return vhost; }
  void force_close(std::string_view r) override { reason = "forced: " + std::string(r); }
  void force_close_with_text(std::string_view t) override { reason = t; }
  void alarms_cleared() override {}
  void reading_may_resume() override {}
  std::string vhost, reason;
};

TEST_F(BrokerAccessTest, DeletingAVhostForceClosesOnlyItsConnections) {
  Broker& b = start();
  ASSERT_FALSE(b.create_vhost("v"));
  auto in_v = std::make_shared<FakeConnection>("v");
  auto in_root = std::make_shared<FakeConnection>("/");
  b.register_connection(in_v);
  b.register_connection(in_root);
  ASSERT_FALSE(b.delete_vhost("v"));
  EXPECT_EQ(in_v->reason, "vhost 'v' is deleted");
  EXPECT_EQ(in_root->reason, "");
  b.unregister_connection(in_v.get());
  b.unregister_connection(in_root.get());
}

TEST_F(BrokerAccessTest, TopicPermissionsAreStoredCheckedAndDeletedWithTheirUserAndVhost) {
  Broker& b = start();
  ASSERT_FALSE(b.add_user("u", "p"));
  ASSERT_FALSE(b.create_vhost("v"));
  EXPECT_EQ(b.set_topic_permissions("nobody", "/", "x", {"a", "a"})->text,
            "no such user 'nobody'");
  EXPECT_EQ(b.set_topic_permissions("u", "nope", "x", {"a", "a"})->text, "no such vhost 'nope'");
  EXPECT_TRUE(b.set_topic_permissions("u", "/", "x", {"(", "a"}));
  ASSERT_FALSE(b.set_topic_permissions("u", "/", "amq.topic", {"^a\\.", "^{username}\\."}));
  ASSERT_FALSE(b.set_topic_permissions("u", "v", "amq.topic", {"", ""}));
  Broker& again = start();  // restored from the store
  ASSERT_EQ(again.list_topic_permissions().size(), 2u);
  EXPECT_EQ(again.list_topic_permissions()[0].permissions.read, "^{username}\\.");
  EXPECT_TRUE(again.topic_checks_apply("u", "/"));
  EXPECT_FALSE(again.topic_checks_apply("guest", "/"));
  EXPECT_FALSE(again.check_topic_access("u", "/", "amq.topic", Permission::kWrite, "a.b"));
  Status s = again.check_topic_access("u", "/", "amq.topic", Permission::kWrite, "z.b");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->code, ErrorCode::kAccessRefused);
  EXPECT_EQ(s->text,
            "access to topic 'z.b' in exchange 'amq.topic' in vhost '/' refused for user 'u'");
  EXPECT_FALSE(again.check_topic_access("u", "/", "amq.topic", Permission::kRead, "u.x"));
  EXPECT_TRUE(again.check_topic_access("u", "/", "amq.topic", Permission::kRead, "w.x"));
  // Only topic exchanges are checked by type; a missing exchange passes.
  VHost* root = again.find_vhost("/");
  EXPECT_TRUE(again.check_topic_access_on(root->find_exchange("amq.topic"), "u", "/",
                                          Permission::kWrite, "z"));
  EXPECT_FALSE(again.check_topic_access_on(root->find_exchange("amq.direct"), "u", "/",
                                           Permission::kWrite, "z"));
  EXPECT_FALSE(again.check_topic_access_on(nullptr, "u", "/", Permission::kWrite, "z"));
  // Deleting the vhost, then the user, removes theirs from the store too.
  ASSERT_FALSE(again.delete_vhost("v"));
  ASSERT_EQ(start().list_topic_permissions().size(), 1u);
  ASSERT_FALSE(broker_->delete_user("u"));
  EXPECT_TRUE(start().list_topic_permissions().empty());
}

TEST_F(BrokerAccessTest, ClearTopicPermissionsOfOneExchangeOrAll) {
  Broker& b = start();
  ASSERT_FALSE(b.add_user("u", "p"));
  ASSERT_FALSE(b.set_topic_permissions("u", "/", "x1", {"a", "a"}));
  ASSERT_FALSE(b.set_topic_permissions("u", "/", "x2", {"a", "a"}));
  const std::string x1 = "x1";
  ASSERT_FALSE(b.clear_topic_permissions("u", "/", &x1));
  ASSERT_EQ(start().list_topic_permissions().size(), 1u);
  EXPECT_EQ(broker_->list_topic_permissions()[0].exchange, "x2");
  ASSERT_FALSE(broker_->clear_topic_permissions("u", "/", nullptr));
  EXPECT_TRUE(start().list_topic_permissions().empty());
  EXPECT_EQ(broker_->clear_topic_permissions("nobody", "/", nullptr)->text,
            "no such user 'nobody'");
}

}  // namespace
}  // namespace warren::broker
