// Policies: validation with RabbitMQ 3.10.8's texts (captured from rabbitmqctl set_policy),
// matching and priority, the per-key argument-vs-policy rule, and a vhost applying policies to
// existing and new queues and exchanges at once.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "broker/policy.h"
#include "broker/vhost.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::FakeScheduler;
using testing::make_message;
using testing::table;

std::string policy_error(std::string_view pattern, std::string_view def,
                         std::string_view apply_to = "all") {
  auto p = make_policy("p", pattern, def, apply_to, 0);
  return p ? "ok" : p.error().text;
}

Policy policy(std::string_view name, std::string_view pattern, std::string_view def,
              std::string_view apply_to = "all", int64_t priority = 0) {
  auto p = make_policy(name, pattern, def, apply_to, priority);
  EXPECT_TRUE(p) << (p ? "" : p.error().text);
  return p ? std::move(*p) : Policy{};
}

TEST(PolicyValidationTest, RabbitMqTexts) {
  EXPECT_EQ(policy_error("^q", R"({"message-ttl":-1})"), "-1 is not a valid message TTL");
  EXPECT_EQ(policy_error("^q", R"({"message-ttl":1.5})"), "1.5 is not a valid message TTL");
  EXPECT_EQ(policy_error("^q", R"({"foo":1})"), R"([{<<"foo">>,1}] are not recognised policy settings)");
  EXPECT_EQ(policy_error("^q", R"({"message-ttl":0,"foo":1,"bar":2})"),
            R"([{<<"bar">>,2},{<<"foo">>,1}] are not recognised policy settings)");
  EXPECT_EQ(policy_error("^q", R"({"max-priority":5})"),
            R"([{<<"max-priority">>,5}] are not recognised policy settings)");
  // ~p breaks a tuple that does not fit in 80 columns.
  const std::string bracket =
      "pattern should be regular expression but is invalid: {\"missing terminating ] for "
      "character class\",\n" + std::string(54, ' ') + "1}";
  EXPECT_EQ(policy_error("[", R"({"max-length":1})"), bracket);
  // Every failing part, one per line: definition, apply-to, pattern; in the definition the first
  // bad value (keys in alphabetical order) hides unknown keys.
  EXPECT_EQ(policy_error("[", R"({"foo":1})"),
            "[{<<\"foo\">>,1}] are not recognised policy settings\n" + bracket);
  EXPECT_EQ(policy_error("[", "{}"), "no policy provided\n" + bracket);
  EXPECT_EQ(policy_error("^q", R"({"foo":1})", "bogus"),
            "[{<<\"foo\">>,1}] are not recognised policy settings\n"
            "apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'");
  EXPECT_EQ(policy_error("^q", R"({"max-length":-1,"foo":1})"), "-1 is not a valid maximum length");
  EXPECT_EQ(policy_error("^q", R"({"max-length":-1,"expires":0})"), "0 is not a valid queue expiry");
  EXPECT_EQ(policy_error("^q", R"({"overflow":"x","dead-letter-exchange":5})"),
            "5 is not a valid dead letter exchange name");
  EXPECT_EQ(policy_error("(", R"({"max-length":1})"),
            R"x(pattern should be regular expression but is invalid: {"missing )",1})x");
  EXPECT_EQ(policy_error("*a", R"({"max-length":1})"),
            R"(pattern should be regular expression but is invalid: {"nothing to repeat",0})");
  EXPECT_EQ(policy_error("^q", R"({"max-length":-1})"), "-1 is not a valid maximum length");
  EXPECT_EQ(policy_error("^q", R"({"max-length":"5"})"), R"(<<"5">> is not a valid maximum length)");
  EXPECT_EQ(policy_error("^q", R"({"max-length-bytes":-1})"),
            "-1 is not a valid maximum length in bytes");
  EXPECT_EQ(policy_error("^q", R"({"overflow":"bogus"})"),
            R"(<<"bogus">> is not a valid overflow value)");
  EXPECT_EQ(policy_error("^q", R"({"expires":0})"), "0 is not a valid queue expiry");
  EXPECT_EQ(policy_error("^q", R"({"expires":-5})"), "-5 is not a valid queue expiry");
  EXPECT_EQ(policy_error("^q", R"({"dead-letter-exchange":5})"),
            "5 is not a valid dead letter exchange name");
  EXPECT_EQ(policy_error("^q", R"({"dead-letter-routing-key":5})"),
            "5 is not a valid dead letter routing key");
  EXPECT_EQ(policy_error("^q", R"({"alternate-exchange":5})"),
            "5 is not a valid alternate exchange name");
  EXPECT_EQ(policy_error("^q", "{}"), "no policy provided");
  EXPECT_EQ(policy_error("^q", "notjson"), "JSON decoding error. Reason: badarg");
  EXPECT_EQ(policy_error("^q", "[1]"), "definition must be a JSON object");
  EXPECT_EQ(policy_error("^q", R"({"max-length":1})", "bogus"),
            "apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'");
  // Accepted by RabbitMQ 3.10.8 too.
  EXPECT_EQ(policy_error("^q", R"({"dead-letter-routing-key":"x"})"), "ok");
  EXPECT_EQ(policy_error("^q", R"({"overflow":"reject-publish-dlx"})"), "ok");
  EXPECT_EQ(policy_error("^q", R"({"message-ttl":0,"expires":1,"max-length":0})"), "ok");
}

TEST(PolicyMatchTest, UnanchoredUnlessAnchoredAndApplyTo) {
  std::vector<Policy> ps;
  ps.push_back(policy("mid", "ord", R"({"max-length":1})"));
  EXPECT_NE(best_policy(ps, "orders", true), nullptr);
  EXPECT_NE(best_policy(ps, "big-orders", true), nullptr);
  ps[0] = policy("anchored", "^ord", R"({"max-length":1})");
  EXPECT_NE(best_policy(ps, "orders", true), nullptr);
  EXPECT_EQ(best_policy(ps, "big-orders", true), nullptr);
  ps[0] = policy("x", "^ord", R"({"max-length":1})", "exchanges");
  EXPECT_EQ(best_policy(ps, "orders", true), nullptr);
  EXPECT_NE(best_policy(ps, "orders", false), nullptr);
  ps[0] = policy("q", "^ord", R"({"max-length":1})", "queues");
  EXPECT_NE(best_policy(ps, "orders", true), nullptr);
  EXPECT_EQ(best_policy(ps, "orders", false), nullptr);
}

TEST(PolicyMatchTest, HighestPriorityWinsAlone) {
  std::vector<Policy> ps;
  ps.push_back(policy("low", "^q", R"({"max-length":1})", "all", 1));
  ps.push_back(policy("high", "^q", R"({"message-ttl":5})", "all", 7));
  ps.push_back(policy("other", "^z", R"({"message-ttl":5})", "all", 99));
  const Policy* p = best_policy(ps, "q1", true);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "high");
  // Only one policy applies: the lower one's max-length does not.
  QueueSettings s = QueueSettings::resolve({}, &p->definition);
  EXPECT_EQ(s.message_ttl_ms, 5u);
  EXPECT_FALSE(s.max_length);
}

TEST(QueueSettingsResolveTest, PerKeyRuleOfRabbitMq310) {
  Policy p = policy("p", ".*",
                    R"({"message-ttl":100,"expires":5000,"max-length":10,"max-length-bytes":1000,)"
                    R"("overflow":"reject-publish","dead-letter-exchange":"pdlx",)"
                    R"("dead-letter-routing-key":"prk"})");
  // Policy alone.
  QueueSettings s = QueueSettings::resolve({}, &p.definition);
  EXPECT_EQ(s.message_ttl_ms, 100u);
  EXPECT_EQ(s.expires_ms, 5000u);
  EXPECT_EQ(s.max_length, 10u);
  EXPECT_EQ(s.max_length_bytes, 1000u);
  EXPECT_EQ(s.overflow, Overflow::kRejectPublish);
  EXPECT_EQ(s.dead_letter_exchange, "pdlx");
  EXPECT_EQ(s.dead_letter_routing_key, "prk");
  // Numbers: the lower wins, whichever side it is on.
  FieldTable lower = table({{"x-message-ttl", FieldValue(int32_t{50})},
                            {"x-expires", FieldValue(int32_t{9000})},
                            {"x-max-length", FieldValue(int32_t{3})},
                            {"x-max-length-bytes", FieldValue(int32_t{5000})}});
  s = QueueSettings::resolve(lower, &p.definition);
  EXPECT_EQ(s.message_ttl_ms, 50u);
  EXPECT_EQ(s.expires_ms, 5000u);
  EXPECT_EQ(s.max_length, 3u);
  EXPECT_EQ(s.max_length_bytes, 1000u);
  // overflow, dead-letter exchange and routing key: the argument wins, key by key.
  FieldTable args = table({{"x-overflow", FieldValue(std::string("drop-head"))},
                           {"x-dead-letter-exchange", FieldValue(std::string("adlx"))}});
  s = QueueSettings::resolve(args, &p.definition);
  EXPECT_EQ(s.overflow, Overflow::kDropHead);
  EXPECT_EQ(s.dead_letter_exchange, "adlx");
  EXPECT_EQ(s.dead_letter_routing_key, "prk");
  // max-priority stays the argument's.
  s = QueueSettings::resolve(table({{"x-max-priority", FieldValue(int32_t{5})}}), &p.definition);
  EXPECT_EQ(s.max_priority, 5);
}

class VHostPolicyTest : public ::testing::Test {
 protected:
  Queue* Declare(std::string_view name, FieldTable args = {}) {
    QueueDeclare d;
    d.name = name;
    d.arguments = std::move(args);
    auto r = vh.declare_queue(d, 1);
    EXPECT_TRUE(r) << (r ? "" : r.error().text);
    return vh.find_queue(name);
  }
  Status Set(std::string_view name, std::string_view pattern, std::string_view def,
             std::string_view apply_to = "all", int64_t priority = 0) {
    return vh.set_policy(policy(name, pattern, def, apply_to, priority));
  }
  FakeScheduler sched;
  VHost vh{"/", &sched};
};

TEST_F(VHostPolicyTest, LowerMaxLengthDropsAtOnceAndClearingRestores) {
  Queue* q = Declare("q1");
  for (int i = 0; i < 10; ++i) q->enqueue(make_message("m"));
  EXPECT_FALSE(Set("limit", "^q", R"({"max-length":5})"));
  EXPECT_EQ(q->message_count(), 5u);
  EXPECT_EQ(vh.policy_for_queue("q1")->name, "limit");
  EXPECT_FALSE(vh.clear_policy("limit"));
  EXPECT_FALSE(q->settings().max_length);
  EXPECT_EQ(vh.policy_for_queue("q1"), nullptr);
  for (int i = 0; i < 10; ++i) q->enqueue(make_message("m"));
  EXPECT_EQ(q->message_count(), 15u);
  Status missing = vh.clear_policy("limit");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->text, "Parameter does not exist");
  EXPECT_EQ(missing->code, ErrorCode::kNotFound);
}

TEST_F(VHostPolicyTest, NewQueuesGetThePolicyAndReplacingItReResolves) {
  EXPECT_FALSE(Set("p", "^q", R"({"max-length":2})"));
  Queue* q = Declare("q2");
  EXPECT_EQ(q->settings().max_length, 2u);
  Queue* other = Declare("z");
  EXPECT_FALSE(other->settings().max_length);
  EXPECT_FALSE(Set("p", "^q", R"({"max-length":7})"));
  EXPECT_EQ(q->settings().max_length, 7u);
  EXPECT_EQ(vh.policies().size(), 1u);
  // A higher-priority policy takes over entirely.
  EXPECT_FALSE(Set("hi", "q", R"({"message-ttl":1000})", "queues", 5));
  EXPECT_FALSE(q->settings().max_length);
  EXPECT_EQ(q->settings().message_ttl_ms, 1000u);
  // The argument is kept where it is lower.
  Queue* a = Declare("qa", table({{"x-message-ttl", FieldValue(int32_t{10})}}));
  EXPECT_EQ(a->settings().message_ttl_ms, 10u);
}

TEST_F(VHostPolicyTest, NewMessageTtlAppliesToMessagesQueuedFromThenOn) {
  // As RabbitMQ 3.10.8 (checked with rabbitmqctl set_policy on a queue holding 3 messages: they
  // stay): a message's expiry is stamped when it is queued.
  Queue* q = Declare("qt");
  q->enqueue(make_message("old"));
  EXPECT_FALSE(Set("ttl", "^qt$", R"({"message-ttl":100})"));
  EXPECT_EQ(q->settings().message_ttl_ms, 100u);
  q->wake_up();
  EXPECT_EQ(q->message_count(), 1u);
  QueuedMessage old = q->pop();
  EXPECT_EQ(old.expires_at, 0u);
  q->enqueue(make_message("new"));
  QueuedMessage fresh = q->pop();
  EXPECT_NE(fresh.expires_at, 0u);
}

TEST_F(VHostPolicyTest, RejectPublishPolicyKeepsTheBacklog) {
  // Under reject-publish a lower limit refuses new messages and drops nothing (RabbitMQ's
  // maybe_drop_head only drops under drop-head).
  Queue* q = Declare("qr");
  for (int i = 0; i < 4; ++i) q->enqueue(make_message("m"));
  EXPECT_FALSE(Set("rp", "^qr$", R"({"max-length":2,"overflow":"reject-publish"})"));
  EXPECT_EQ(q->message_count(), 4u);
  EXPECT_TRUE(q->enqueue(make_message("m")).rejected);
}

TEST_F(VHostPolicyTest, AlternateExchangeFromPolicyArgumentWins) {
  ExchangeDeclare x;
  x.name = "ex";
  x.type = "direct";
  ASSERT_FALSE(vh.declare_exchange(x));
  ExchangeDeclare own;
  own.name = "ex-own";
  own.type = "direct";
  own.arguments = table({{"alternate-exchange", FieldValue(std::string("mine"))}});
  ASSERT_FALSE(vh.declare_exchange(own));
  EXPECT_FALSE(Set("ae", "^ex", R"({"alternate-exchange":"ae1"})", "exchanges"));
  EXPECT_EQ(vh.find_exchange("ex")->alternate_exchange(), "ae1");
  EXPECT_EQ(vh.find_exchange("ex-own")->alternate_exchange(), "mine");
  EXPECT_FALSE(vh.clear_policy("ae"));
  EXPECT_EQ(vh.find_exchange("ex")->alternate_exchange(), "");
  EXPECT_EQ(vh.find_exchange("ex-own")->alternate_exchange(), "mine");
  // apply-to queues leaves exchanges alone.
  EXPECT_FALSE(Set("ae", "^ex", R"({"alternate-exchange":"ae1"})", "queues"));
  EXPECT_EQ(vh.find_exchange("ex")->alternate_exchange(), "");
}

TEST(VHostPolicyStoreTest, SetAndClearArePersistedAndRestoredBeforeQueues) {
  std::string dir = (std::filesystem::temp_directory_path() / "warren-policy-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  FakeScheduler sched;
  {
    auto store = store::MetadataStore::open(dir);
    ASSERT_TRUE(store);
    VHost vh("/", &sched, &*store);
    ASSERT_FALSE(vh.set_policy(policy("keep", "^q", R"({"max-length":3})", "queues", 2)));
    ASSERT_FALSE(vh.set_policy(policy("gone", "^q", R"({"max-length":1})", "all", 9)));
    ASSERT_FALSE(vh.clear_policy("gone"));
    QueueDeclare d;
    d.name = "q1";
    d.durable = true;
    ASSERT_TRUE(vh.declare_queue(d, 1));
  }
  {
    auto store = store::MetadataStore::open(dir);
    ASSERT_TRUE(store);
    auto defs = store->load();
    ASSERT_TRUE(defs);
    ASSERT_EQ(defs->policies.size(), 1u);
    EXPECT_EQ(defs->policies[0].name, "keep");
    EXPECT_EQ(defs->policies[0].apply_to, "queues");
    EXPECT_EQ(defs->policies[0].priority, 2);
    EXPECT_EQ(defs->policies[0].definition, R"({"max-length":3})");
    VHost vh("/", &sched, &*store);
    vh.restore(*defs);
    ASSERT_NE(vh.find_queue("q1"), nullptr);
    EXPECT_EQ(vh.find_queue("q1")->settings().max_length, 3u);
    ASSERT_EQ(vh.policies().size(), 1u);
    EXPECT_EQ(vh.policy_for_queue("q1")->definition_json, R"({"max-length":3})");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace warren::broker
