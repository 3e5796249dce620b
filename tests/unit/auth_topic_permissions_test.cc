// Topic permissions (auth/topic_permissions.h): variable expansion as RabbitMQ's
// expand_topic_permission, unanchored matching, the empty pattern, what applies when there is
// no permission, and the per-client-id patterns.
#include <gtest/gtest.h>

#include "auth/access_control.h"
#include "auth/topic_permissions.h"

namespace warren::auth {
namespace {

TopicVariables amqp(std::string_view user, std::string_view vhost) {
  return {user, vhost, std::nullopt};
}

TEST(TopicVariablesTest, ExpandsEveryOccurrenceWithoutEscaping) {
  EXPECT_EQ(expand_topic_variables("^{username}\\.{vhost}\\.{username}$", amqp("u", "v")),
            "^u\\.v\\.u$");
  // The values go in as they are: a '.' in a name is a regex dot.
  EXPECT_EQ(expand_topic_variables("^{username}$", amqp("a.b", "/")), "^a.b$");
  // Without a client id (AMQP 0-9-1, STOMP) {client_id} stays as written.
  EXPECT_EQ(expand_topic_variables("{client_id}", amqp("u", "/")), "{client_id}");
  EXPECT_EQ(expand_topic_variables("^{client_id}/", {"u", "/", "sensor-1"}), "^sensor-1/");
  // Unknown names are not variables.
  EXPECT_EQ(expand_topic_variables("{user}", amqp("u", "/")), "{user}");
}

TEST(TopicVariablesTest, ClientIdFirstThenUsernameThenVhost) {
  // RabbitMQ folds over its variable map in key order (client_id, username, vhost), replacing
  // in the text produced so far: a client id that contains "{username}" gets it expanded, a
  // user name containing "{client_id}" keeps it.
  EXPECT_EQ(expand_topic_variables("{client_id}", {"u", "/", "x{username}"}), "xu");
  EXPECT_EQ(expand_topic_variables("{username}", {"a{client_id}", "/", "c"}), "a{client_id}");
}

TEST(TopicPermissionsTest, NoPermissionForTheExchangeAllowsEverything) {
  TopicPermissions t;
  EXPECT_FALSE(t.any("u", "/"));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kWrite, "anything", amqp("u", "/")));
  ASSERT_FALSE(t.set("u", "/", "amq.topic", {"^a\\.", "^b\\."}));
  EXPECT_TRUE(t.any("u", "/"));
  EXPECT_FALSE(t.any("u", "other"));
  EXPECT_FALSE(t.any("other", "/"));
  EXPECT_TRUE(t.permitted("other.topic", Permission::kWrite, "z", amqp("u", "/")));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kWrite, "z", amqp("u", "v")));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kWrite, "z", amqp("w", "/")));
}

TEST(TopicPermissionsTest, WriteAndReadAreSeparateUnanchoredPatterns) {
  TopicPermissions t;
  ASSERT_FALSE(t.set("u", "/", "amq.topic", {"^a\\.", "b"}));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kWrite, "a.x", amqp("u", "/")));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kWrite, "b.x", amqp("u", "/")));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kWrite, "xa.x", amqp("u", "/")));
  // Unanchored, as re:run: "b" matches anywhere.
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kRead, "x.b.#", amqp("u", "/")));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kRead, "a.x", amqp("u", "/")));
}

TEST(TopicPermissionsTest, EmptyPatternPermitsOnlyTheEmptyKey) {
  TopicPermissions t;
  ASSERT_FALSE(t.set("u", "/", "x", {"", ""}));
  EXPECT_TRUE(t.permitted("x", Permission::kWrite, "", amqp("u", "/")));
  EXPECT_FALSE(t.permitted("x", Permission::kWrite, "a", amqp("u", "/")));
  EXPECT_FALSE(t.permitted("x", Permission::kRead, "#", amqp("u", "/")));
}

TEST(TopicPermissionsTest, VariablesAreTheConnectionsOwn) {
  TopicPermissions t;
  ASSERT_FALSE(t.set("alice", "v1", "amq.topic",
                     {"^{username}\\.{vhost}\\.", "^{client_id}/|^shared/"}));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kWrite, "alice.v1.x", amqp("alice", "v1")));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kWrite, "bob.v1.x", amqp("alice", "v1")));
  // MQTT: {client_id} is the connection's; each client compiles its own pattern.
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kRead, "c1/x", {"alice", "v1", "c1"}));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kRead, "c2/x", {"alice", "v1", "c1"}));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kRead, "c2/x", {"alice", "v1", "c2"}));
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kRead, "shared/x", {"alice", "v1", "c3"}));
  // Without a client id the pattern is matched as written ("{client_id}/" literally).
  EXPECT_TRUE(t.permitted("amq.topic", Permission::kRead, "{client_id}/x", amqp("alice", "v1")));
  EXPECT_FALSE(t.permitted("amq.topic", Permission::kRead, "c1/x", amqp("alice", "v1")));
}

TEST(TopicPermissionsTest, AnExpansionThatDoesNotCompileMatchesNothing) {
  TopicPermissions t;
  ASSERT_FALSE(t.set("a(b", "/", "x", {"^{username}", "^{client_id}"}));
  EXPECT_FALSE(t.permitted("x", Permission::kWrite, "a(b", amqp("a(b", "/")));
  EXPECT_FALSE(t.permitted("x", Permission::kRead, "(", {"a(b", "/", "("}));
}

TEST(TopicPermissionsTest, InvalidPatternsAreRefusedAsGiven) {
  TopicPermissions t;
  auto bad = t.set("u", "/", "x", {"ok", "("});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->pattern, "(");
  EXPECT_EQ(bad->error.message, "missing )");
  EXPECT_FALSE(t.any("u", "/"));
  // Braces that are not a repetition are literal, so patterns with variables compile.
  EXPECT_FALSE(t.set("u", "/", "x", {"^{username}-{vhost}$", "{client_id}"}));
}

TEST(TopicPermissionsTest, ClearOneExchangeAllOfAUserOrAVhost) {
  TopicPermissions t;
  ASSERT_FALSE(t.set("u", "/", "x1", {"a", "a"}));
  ASSERT_FALSE(t.set("u", "/", "x2", {"a", "a"}));
  ASSERT_FALSE(t.set("u", "v", "x1", {"a", "a"}));
  ASSERT_FALSE(t.set("w", "v", "x1", {"a", "a"}));
  EXPECT_TRUE(t.clear("u", "/", "x1"));
  EXPECT_FALSE(t.clear("u", "/", "x1"));
  EXPECT_TRUE(t.any("u", "/"));
  EXPECT_TRUE(t.clear("u", "/"));
  EXPECT_FALSE(t.any("u", "/"));
  t.clear_vhost("v");
  EXPECT_TRUE(t.list().empty());
  ASSERT_FALSE(t.set("u", "/", "x1", {"a", "b"}));
  ASSERT_FALSE(t.set("w", "/", "x1", {"a", "b"}));
  t.clear_user("u");
  ASSERT_EQ(t.list().size(), 1u);
  EXPECT_EQ(t.list()[0].user, "w");
  EXPECT_EQ(t.list()[0].permissions.read, "b");
}

TEST(TopicPermissionsTest, ChangesMoveAccessControlsGeneration) {
  AccessControl ac;
  uint64_t g = ac.generation();
  ASSERT_FALSE(ac.set_topic("u", "/", "x", {"a", "b"}));
  EXPECT_NE(ac.generation(), g);
  g = ac.generation();
  EXPECT_TRUE(ac.set_topic("u", "/", "x", {"(", "b"}));  // refused: nothing changes
  EXPECT_EQ(ac.generation(), g);
  ac.clear_topic("u", "/", "x");
  EXPECT_NE(ac.generation(), g);
  ASSERT_FALSE(ac.set_topic("u", "/", "x", {"a", "b"}));
  ac.clear_user("u");  // a deleted user's topic permissions go with its others
  EXPECT_FALSE(ac.topics().any("u", "/"));
}

}  // namespace
}  // namespace warren::auth
