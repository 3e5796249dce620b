// Exchange: bindings (add / remove / remove_bindings_to, duplicates, bindings that differ only by
// arguments) and route() for direct, fanout, topic and headers exchanges.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/field_table.h"
#include "broker/exchange.h"
#include "broker/queue.h"
#include "broker_test_fakes.h"

namespace warren::broker {
namespace {

using testing::table;

class BrokerExchangeTest : public ::testing::Test {
 protected:
  BrokerExchangeTest() {
    for (const char* n : {"q1", "q2", "q3"}) queues_.push_back(Queue::create("/", n, {}, &sched_));
  }
  Destination Q(int i) { return Destination{queues_[i].get(), nullptr}; }

  // Names of the destinations route() emits, counting repeats: in binding order, except for
  // topic exchanges, whose trie emits in its own order (sorted here).
  static std::vector<std::string> Route(const Exchange& x, std::string_view key,
                                        const FieldTable& headers = {}, int* headers_calls = nullptr) {
    std::vector<std::string> out;
    x.route(
        key,
        [&]() -> const FieldTable& {
          if (headers_calls) ++*headers_calls;
          return headers;
        },
        [&](const Destination& d) {
          out.push_back(d.queue ? d.queue->name() : "x:" + d.exchange->name());
        });
    if (x.type() == ExchangeType::kTopic) std::sort(out.begin(), out.end());
    return out;
  }
  static bool Add(Exchange& x, Destination d, std::string_view key, const FieldTable& args = {}) {
    std::string error;
    bool added = x.add_binding(d, key, args, &error);
    EXPECT_EQ(error, "");
    return added;
  }

  testing::FakeScheduler sched_;
  std::vector<QueueRef> queues_;
};

using Names = std::vector<std::string>;

TEST(BrokerExchangeTypeTest, ParseAndName) {
  EXPECT_EQ(parse_exchange_type("direct"), ExchangeType::kDirect);
  EXPECT_EQ(parse_exchange_type("fanout"), ExchangeType::kFanout);
  EXPECT_EQ(parse_exchange_type("topic"), ExchangeType::kTopic);
  EXPECT_EQ(parse_exchange_type("headers"), ExchangeType::kHeaders);
  EXPECT_EQ(parse_exchange_type("Direct"), std::nullopt);
  EXPECT_EQ(parse_exchange_type("x-consistent-hash"), std::nullopt);
  EXPECT_EQ(parse_exchange_type(""), std::nullopt);
  for (auto t : {ExchangeType::kDirect, ExchangeType::kFanout, ExchangeType::kTopic,
                 ExchangeType::kHeaders})
    EXPECT_EQ(parse_exchange_type(exchange_type_name(t)), t);
}

TEST_F(BrokerExchangeTest, DirectRoutesByExactKeyToEveryBoundQueue) {
  Exchange x("x", ExchangeType::kDirect, {});
  EXPECT_FALSE(x.has_bindings());
  EXPECT_TRUE(Add(x, Q(0), "k"));
  EXPECT_TRUE(Add(x, Q(1), "k"));
  EXPECT_TRUE(Add(x, Q(2), "other"));
  EXPECT_TRUE(x.has_bindings());
  EXPECT_EQ(x.bindings().size(), 3u);
  Names r = Route(x, "k");
  std::sort(r.begin(), r.end());
  EXPECT_EQ(r, (Names{"q1", "q2"}));
  EXPECT_EQ(Route(x, "other"), (Names{"q3"}));
  EXPECT_TRUE(Route(x, "K").empty()) << "keys are case-sensitive";
  EXPECT_TRUE(Route(x, "").empty());
  EXPECT_TRUE(Route(x, "k.").empty());
}

TEST_F(BrokerExchangeTest, DirectSameQueueUnderTwoKeys) {
  Exchange x("x", ExchangeType::kDirect, {});
  EXPECT_TRUE(Add(x, Q(0), "a"));
  EXPECT_TRUE(Add(x, Q(0), "b"));
  EXPECT_EQ(Route(x, "a"), (Names{"q1"}));
  EXPECT_EQ(Route(x, "b"), (Names{"q1"}));
  EXPECT_TRUE(x.remove_binding(Q(0), "a", {}));
  EXPECT_TRUE(Route(x, "a").empty());
  EXPECT_EQ(Route(x, "b"), (Names{"q1"}));
}

TEST_F(BrokerExchangeTest, DuplicateBindingIsIgnored) {
  Exchange x("x", ExchangeType::kDirect, {});
  EXPECT_TRUE(Add(x, Q(0), "k", table({{"a", int32_t(1)}})));
  EXPECT_FALSE(Add(x, Q(0), "k", table({{"a", int32_t(1)}})));
  EXPECT_EQ(x.bindings().size(), 1u);
  EXPECT_EQ(Route(x, "k"), (Names{"q1"}));
  EXPECT_TRUE(x.remove_binding(Q(0), "k", table({{"a", int32_t(1)}})));
  EXPECT_TRUE(Route(x, "k").empty());
  EXPECT_FALSE(x.has_bindings());
}

TEST_F(BrokerExchangeTest, BindingsDifferingOnlyByArgumentsRouteOnce) {
  Exchange x("x", ExchangeType::kDirect, {});
  EXPECT_TRUE(Add(x, Q(0), "k"));
  EXPECT_TRUE(Add(x, Q(0), "k", table({{"a", int32_t(1)}})));
  EXPECT_EQ(x.bindings().size(), 2u);
  EXPECT_EQ(Route(x, "k"), (Names{"q1"}));
  EXPECT_FALSE(x.remove_binding(Q(0), "k", table({{"a", int32_t(2)}}))) << "no such binding";
  EXPECT_TRUE(x.remove_binding(Q(0), "k", {}));
  EXPECT_EQ(Route(x, "k"), (Names{"q1"})) << "the other binding still routes";
  EXPECT_TRUE(x.remove_binding(Q(0), "k", table({{"a", int32_t(1)}})));
  EXPECT_TRUE(Route(x, "k").empty());
}

TEST_F(BrokerExchangeTest, RemoveBindingsToRemovesEveryBindingOfTheDestination) {
  Exchange x("x", ExchangeType::kDirect, {});
  Add(x, Q(0), "a");
  Add(x, Q(0), "b");
  Add(x, Q(1), "a");
  EXPECT_EQ(x.remove_bindings_to(Q(0)), 2u);
  EXPECT_EQ(Route(x, "a"), (Names{"q2"}));
  EXPECT_TRUE(Route(x, "b").empty());
  EXPECT_EQ(x.remove_bindings_to(Q(0)), 0u);
  EXPECT_EQ(x.remove_bindings_to(Q(1)), 1u);
  EXPECT_FALSE(x.has_bindings());
  EXPECT_TRUE(Route(x, "a").empty());
}

// remove_bindings_to() is what queue deletion uses; a destination left in the direct-routing index
// would be a dangling Queue* once the queue is freed.
TEST_F(BrokerExchangeTest, RemoveBindingsToClearsBindingsThatDifferOnlyByArguments) {
  Exchange x("x", ExchangeType::kDirect, {});
  Add(x, Q(0), "k");
  Add(x, Q(0), "k", table({{"a", int32_t(1)}}));
  Add(x, Q(1), "k");
  EXPECT_EQ(x.remove_bindings_to(Q(0)), 2u);
  EXPECT_EQ(x.bindings().size(), 1u);
  EXPECT_EQ(Route(x, "k"), (Names{"q2"})) << "q1 has no binding left but is still routed to";
}

// Bindings are removed by moving the last one into the gap, and found through per-binding and
// per-destination indexes: random binds, unbinds and queue removals must leave exactly the
// bindings a plain list would, routed the same.
TEST_F(BrokerExchangeTest, IndexesAgreeWithAPlainListUnderRandomChanges) {
  for (ExchangeType type : {ExchangeType::kDirect, ExchangeType::kFanout, ExchangeType::kTopic}) {
    Exchange x("x", type, {});
    struct Model {
      int queue;
      std::string key;
      int arg;  // 0: no arguments
    };
    std::vector<Model> model;
    const std::vector<std::string> keys = {"a", "b", "a.b", "*", "#"};
    uint32_t seed = 12345;
    auto next = [&](uint32_t n) {
      seed = seed * 1103515245u + 12345u;
      return (seed >> 16) % n;
    };
    auto args_of = [](int arg) {
      return arg == 0 ? FieldTable{} : table({{"a", int32_t(arg)}});
    };
    for (int step = 0; step < 2000; ++step) {
      const int q = static_cast<int>(next(3));
      const std::string& key = keys[next(keys.size())];
      const int arg = static_cast<int>(next(2));
      const uint32_t op = next(10);
      auto same = [&](const Model& m) { return m.queue == q && m.key == key && m.arg == arg; };
      const bool exists = std::any_of(model.begin(), model.end(), same);
      if (op < 6) {
        EXPECT_EQ(Add(x, Q(q), key, args_of(arg)), !exists);
        if (!exists) model.push_back({q, key, arg});
      } else if (op < 9) {
        EXPECT_EQ(x.remove_binding(Q(q), key, args_of(arg)), exists);
        std::erase_if(model, same);
      } else {
        const size_t n = std::count_if(model.begin(), model.end(),
                                       [&](const Model& m) { return m.queue == q; });
        EXPECT_EQ(x.remove_bindings_to(Q(q)), n);
        std::erase_if(model, [&](const Model& m) { return m.queue == q; });
      }
      ASSERT_EQ(x.bindings().size(), model.size()) << "step " << step;
      for (int i = 0; i < 3; ++i) {
        size_t listed = 0;
        x.for_each_binding_to(Q(i), [&](const Binding& b) {
          EXPECT_EQ(b.dest, Q(i));
          ++listed;
        });
        EXPECT_EQ(listed, static_cast<size_t>(std::count_if(
                              model.begin(), model.end(), [&](const Model& m) { return m.queue == i; })));
      }
      // Each queue is routed to when some binding of it matches (once per matching binding
      // for fanout and topic, once per queue and key for direct).
      for (const std::string& rk : {std::string("a"), std::string("b"), std::string("a.b")}) {
        Names routed = Route(x, rk);
        std::sort(routed.begin(), routed.end());
        routed.erase(std::unique(routed.begin(), routed.end()), routed.end());
        Names expected;
        for (const Model& m : model) {
          bool match = type == ExchangeType::kFanout || m.key == rk ||
                       (type == ExchangeType::kTopic &&
                        (m.key == "#" || (m.key == "*" && rk.find('.') == std::string::npos)));
          if (match) expected.push_back(queues_[m.queue]->name());
        }
        std::sort(expected.begin(), expected.end());
        expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
        ASSERT_EQ(routed, expected) << "type " << static_cast<int>(type) << " step " << step
                                    << " key " << rk;
      }
    }
  }
}

TEST_F(BrokerExchangeTest, RemoveBindingReportsMissing) {
  Exchange x("x", ExchangeType::kFanout, {});
  EXPECT_FALSE(x.remove_binding(Q(0), "", {}));
  Add(x, Q(0), "k");
  EXPECT_FALSE(x.remove_binding(Q(0), "other", {}));
  EXPECT_FALSE(x.remove_binding(Q(1), "k", {}));
  EXPECT_TRUE(x.remove_binding(Q(0), "k", {}));
  EXPECT_FALSE(x.remove_binding(Q(0), "k", {}));
}

TEST_F(BrokerExchangeTest, FanoutIgnoresTheKey) {
  Exchange x("x", ExchangeType::kFanout, {});
  Add(x, Q(0), "");
  Add(x, Q(1), "whatever");
  EXPECT_EQ(Route(x, "anything"), (Names{"q1", "q2"}));
  EXPECT_EQ(Route(x, ""), (Names{"q1", "q2"}));
  x.remove_bindings_to(Q(0));
  EXPECT_EQ(Route(x, "k"), (Names{"q2"}));
}

TEST_F(BrokerExchangeTest, TopicPatterns) {
  Exchange x("x", ExchangeType::kTopic, {});
  Add(x, Q(0), "stock.*.nyse");
  Add(x, Q(1), "stock.#");
  Add(x, Q(2), "#");
  EXPECT_EQ(Route(x, "stock.ibm.nyse"), (Names{"q1", "q2", "q3"}));
  EXPECT_EQ(Route(x, "stock.ibm.nasdaq"), (Names{"q2", "q3"}));
  EXPECT_EQ(Route(x, "stock"), (Names{"q2", "q3"}));
  EXPECT_EQ(Route(x, "stock.a.b.nyse"), (Names{"q2", "q3"}));
  EXPECT_EQ(Route(x, "bond.x"), (Names{"q3"}));
  EXPECT_EQ(Route(x, ""), (Names{"q3"}));
  EXPECT_TRUE(x.remove_binding(Q(2), "#", {}));
  EXPECT_TRUE(Route(x, "bond.x").empty());
}

TEST_F(BrokerExchangeTest, TopicExactKeyWithoutWildcards) {
  Exchange x("x", ExchangeType::kTopic, {});
  Add(x, Q(0), "a.b");
  EXPECT_EQ(Route(x, "a.b"), (Names{"q1"}));
  EXPECT_TRUE(Route(x, "a.b.c").empty());
  EXPECT_TRUE(Route(x, "a").empty());
}

TEST_F(BrokerExchangeTest, HeadersAllAndAny) {
  Exchange x("x", ExchangeType::kHeaders, {});
  Add(x, Q(0), "", table({{"x-match", "all"}, {"format", "pdf"}, {"type", "report"}}));
  Add(x, Q(1), "", table({{"x-match", "any"}, {"format", "pdf"}, {"type", "report"}}));
  Add(x, Q(2), "ignored-key", table({}));  // no arguments: matches everything
  EXPECT_EQ(Route(x, "", table({{"format", "pdf"}, {"type", "report"}})),
            (Names{"q1", "q2", "q3"}));
  EXPECT_EQ(Route(x, "", table({{"format", "pdf"}})), (Names{"q2", "q3"}));
  EXPECT_EQ(Route(x, "", table({{"format", "zip"}})), (Names{"q3"}));
  EXPECT_EQ(Route(x, "", table({})), (Names{"q3"}));
}

TEST_F(BrokerExchangeTest, HeadersAreDecodedAtMostOnceAndOnlyByHeadersExchanges) {
  Exchange h("h", ExchangeType::kHeaders, {});
  int calls = 0;
  Route(h, "k", table({{"a", int32_t(1)}}), &calls);
  EXPECT_EQ(calls, 0) << "no bindings: headers not needed";
  Add(h, Q(0), "", table({{"a", int32_t(1)}}));
  Add(h, Q(1), "", table({{"a", int32_t(1)}, {"x-match", "any"}}));
  Add(h, Q(2), "", table({{"b", int32_t(1)}}));
  EXPECT_EQ(Route(h, "k", table({{"a", int64_t(1)}}), &calls), (Names{"q1", "q2"}));
  EXPECT_EQ(calls, 1);

  for (auto type : {ExchangeType::kDirect, ExchangeType::kFanout, ExchangeType::kTopic}) {
    Exchange x("x", type, {});
    Add(x, Q(0), "k");
    calls = 0;
    EXPECT_EQ(Route(x, "k", {}, &calls), (Names{"q1"}));
    EXPECT_EQ(calls, 0);
  }
}

TEST_F(BrokerExchangeTest, HeadersBindingWithInvalidXMatchIsRejected) {
  Exchange x("x", ExchangeType::kHeaders, {});
  std::string error;
  EXPECT_FALSE(x.add_binding(Q(0), "", table({{"x-match", "some"}}), &error));
  EXPECT_NE(error.find("Invalid x-match field value"), std::string::npos) << error;
  EXPECT_NE(error.find("expected all, any, all-with-x, or any-with-x"), std::string::npos);
  EXPECT_FALSE(x.has_bindings());
  error.clear();
  EXPECT_FALSE(x.add_binding(Q(0), "", table({{"x-match", int32_t(1)}}), &error));
  EXPECT_NE(error.find("Invalid x-match field type"), std::string::npos) << error;
  EXPECT_FALSE(x.has_bindings());
}

TEST_F(BrokerExchangeTest, ExchangeDestinations) {
  Exchange x("x", ExchangeType::kDirect, {});
  Exchange y("y", ExchangeType::kFanout, {});
  EXPECT_TRUE(Add(x, Destination{nullptr, &y}, "k"));
  EXPECT_TRUE(Add(x, Q(0), "k"));
  Names r = Route(x, "k");
  std::sort(r.begin(), r.end());
  EXPECT_EQ(r, (Names{"q1", "x:y"}));
  EXPECT_EQ(x.remove_bindings_to(Destination{nullptr, &y}), 1u);
  EXPECT_EQ(Route(x, "k"), (Names{"q1"}));
}

TEST_F(BrokerExchangeTest, OptionsAndAlternateExchangeArgument) {
  Exchange::Options o;
  o.durable = true;
  o.auto_delete = true;
  o.internal = true;
  o.arguments = table({{"alternate-exchange", "ae"}});
  Exchange x("x", ExchangeType::kTopic, o);
  EXPECT_EQ(x.name(), "x");
  EXPECT_EQ(x.type(), ExchangeType::kTopic);
  EXPECT_TRUE(x.options().durable);
  EXPECT_TRUE(x.options().auto_delete);
  EXPECT_TRUE(x.options().internal);
  EXPECT_EQ(x.alternate_exchange(), "ae");

  Exchange none("n", ExchangeType::kDirect, {});
  EXPECT_EQ(none.alternate_exchange(), "");
  Exchange::Options bad;
  bad.arguments = table({{"alternate-exchange", int32_t(5)}});
  Exchange not_a_string("b", ExchangeType::kDirect, bad);
  EXPECT_EQ(not_a_string.alternate_exchange(), "") << "only a string names an alternate exchange";
}

}  // namespace
}  // namespace warren::broker
