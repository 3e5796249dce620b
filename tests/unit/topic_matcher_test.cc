// Topic matching with RabbitMQ's semantics (rabbit_exchange_type_topic): words split on '.', empty
// words allowed, '*' = exactly one word, '#' = zero or more words, "" = zero words.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/topic_matcher.h"
#include "broker/topic_trie.h"
#include "matching_cases.h"

namespace warren::broker {
namespace {

bool M(std::string_view pattern, std::string_view key) { return TopicPattern(pattern).matches(key); }

std::vector<std::string> Split(std::string_view key) {
  size_t n = split_topic_words(key, nullptr, 0);
  std::vector<std::string_view> w(n);
  EXPECT_EQ(split_topic_words(key, w.data(), n), n);
  return std::vector<std::string>(w.begin(), w.end());
}

// Obviously-correct recursive reference over RabbitMQ-split words.
bool RefMatch(const std::vector<std::string>& p, size_t i, const std::vector<std::string>& k,
              size_t j) {
  if (i == p.size()) return j == k.size();
  if (p[i] == "#") return RefMatch(p, i + 1, k, j) || (j < k.size() && RefMatch(p, i, k, j + 1));
  if (j == k.size()) return false;
  if (p[i] == "*" || p[i] == k[j]) return RefMatch(p, i + 1, k, j + 1);
  return false;
}

std::string Join(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) s += (i ? "." : "") + words[i];
  return s;
}

// Every sequence of 0 to max_len words over the alphabet.
std::vector<std::vector<std::string>> AllSequences(const std::vector<std::string>& alphabet,
                                                   size_t max_len) {
  std::vector<std::vector<std::string>> out = {{}}, frontier = {{}};
  for (size_t len = 1; len <= max_len; ++len) {
    std::vector<std::vector<std::string>> next;
    for (const auto& f : frontier)
      for (const auto& w : alphabet) {
        auto g = f;
        g.push_back(w);
        next.push_back(g);
      }
    out.insert(out.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  return out;
}

TEST(TopicSplitTest, SplitsLikeRabbitMQ) {
  EXPECT_EQ(Split(""), (std::vector<std::string>{}));
  EXPECT_EQ(Split("a"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Split("a.b.c"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Split("a."), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(Split(".a"), (std::vector<std::string>{"", "a"}));
  EXPECT_EQ(Split("."), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(Split(".."), (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(Split("a..b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(Split("*.#"), (std::vector<std::string>{"*", "#"}));
}

TEST(TopicSplitTest, MaxWordsLimitsWritesButCountsAll) {
  std::string_view w[2] = {"untouched", "untouched"};
  EXPECT_EQ(split_topic_words("a.b.c.d", w, 1), 4u);
  EXPECT_EQ(w[0], "a");
  EXPECT_EQ(w[1], "untouched");
  EXPECT_EQ(split_topic_words("a.b.c.d", nullptr, 0), 4u);
}

// Every case of the table shared with the integration tests (tests/data/topic_cases.json; the
// RabbitMQ tutorial bindings, '*', '#', empty words, literal wildcard characters, ...). The
// reference matcher must agree with the table too, so a wrong case in the file is caught here.
TEST(TopicMatcherTest, SharedCaseTable) {
  std::vector<testdata::TopicCase> cases;
  ASSERT_NO_THROW(cases = testdata::LoadTopicCases());
  ASSERT_FALSE(cases.empty()) << "no cases in " << testdata::DataDir();
  size_t checked = 0;
  for (const auto& c : cases) {
    TopicPattern p(c.pattern);
    EXPECT_FALSE(c.match.empty() && c.no_match.empty()) << "pattern '" << c.pattern << "'";
    for (bool want : {true, false}) {
      for (const auto& key : want ? c.match : c.no_match) {
        EXPECT_EQ(p.matches(key), want) << "pattern '" << c.pattern << "' key '" << key << "'";
        EXPECT_EQ(RefMatch(Split(c.pattern), 0, Split(key), 0), want)
            << "reference disagrees with the table: pattern '" << c.pattern << "' key '" << key
            << "'";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, cases.size());
}

TEST(TopicMatcherTest, KeyAccessorAndReuse) {
  TopicPattern p("a.*.c");
  EXPECT_EQ(p.key(), "a.*.c");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(p.matches("a.b.c"));
    EXPECT_FALSE(p.matches("a.b"));
  }
}

TEST(TopicMatcherTest, MaximumLengthKeys) {
  // 255 bytes, 128 one-letter words.
  std::string key;
  for (int i = 0; i < 128; ++i) key += (i ? ".a" : "a");
  ASSERT_EQ(key.size(), 255u);
  std::string stars128, stars127;
  for (int i = 0; i < 128; ++i) stars128 += (i ? ".*" : "*");
  for (int i = 0; i < 127; ++i) stars127 += (i ? ".*" : "*");
  EXPECT_TRUE(M(stars128, key));
  EXPECT_FALSE(M(stars127, key));
  EXPECT_FALSE(M(stars128 + ".*", key));
  EXPECT_TRUE(M(stars127 + ".#", key));
  EXPECT_TRUE(M("#", key));
  EXPECT_TRUE(M("#.a", key));
  EXPECT_TRUE(M("a.#", key));
  EXPECT_FALSE(M("#.b", key));
  EXPECT_TRUE(M(key, key));
  EXPECT_TRUE(M("#.a.#.a.#.a.#", key));

  // 255 dots = 256 empty words, the most words a routing key can have.
  std::string dots(255, '.');
  EXPECT_TRUE(M("#", dots));
  EXPECT_TRUE(M("#.#", dots));
  EXPECT_TRUE(M(dots, dots));
  EXPECT_FALSE(M(dots, std::string(254, '.')));
  std::string stars256;
  for (int i = 0; i < 256; ++i) stars256 += (i ? ".*" : "*");
  EXPECT_TRUE(M(stars256, dots));
  EXPECT_TRUE(M("*.#." + std::string(1, '*'), dots));
  // Key with a 255-byte single word.
  std::string word(255, 'w');
  EXPECT_TRUE(M("*", word));
  EXPECT_TRUE(M(word, word));
  EXPECT_FALSE(M(word.substr(1), word));
}

// Patterns that make a backtracking matcher exponential. TopicPattern::matches is a dynamic
// program over (pattern word, key word), so its work is bounded by the word counts whatever the
// input; this test only checks the answers (how fast matching is belongs in bench/, not here).
TEST(TopicMatcherTest, PathologicalPatternsMatchCorrectly) {
  std::string a128;
  for (int i = 0; i < 128; ++i) a128 += (i ? ".a" : "a");
  std::string a127b = a128.substr(0, 253) + ".b";
  ASSERT_EQ(a127b.size(), 255u);
  std::string a127c = a128.substr(0, 253) + ".c";
  TopicPattern hashes("#.#.#.#.#.a");
  TopicPattern alternating("#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.b");
  TopicPattern mixed("#.*.#.*.#.*.#.*.#.*.#.*.#.c");
  EXPECT_TRUE(hashes.matches(a128));
  EXPECT_FALSE(hashes.matches(a127b));
  EXPECT_FALSE(alternating.matches(a128));  // no trailing b
  EXPECT_TRUE(alternating.matches(a127b));
  EXPECT_FALSE(mixed.matches(a128));
  EXPECT_TRUE(mixed.matches(a127c));
  EXPECT_FALSE(mixed.matches("a.a.a.a.a.c"));  // the six '*' need six words before the c
  EXPECT_TRUE(mixed.matches("a.a.a.a.a.a.c"));
}

TEST(TopicMatcherTest, AgreesWithReferenceOnAllSmallPatternsAndKeys) {
  // Every pattern of up to 4 words over {a, b, "", *, #} against every key of up to 4 words over
  // {a, b, ""}.
  const std::vector<std::string> pwords = {"a", "b", "", "*", "#"};
  const std::vector<std::string> kwords = {"a", "b", ""};
  std::vector<std::string> patterns, keys;
  for (const auto& p : AllSequences(pwords, 4)) patterns.push_back(Join(p));
  for (const auto& k : AllSequences(kwords, 4)) keys.push_back(Join(k));
  int mismatches = 0;
  for (const auto& ps : patterns) {
    TopicPattern tp(ps);
    auto pw = Split(ps);
    for (const auto& ks : keys) {
      bool want = RefMatch(pw, 0, Split(ks), 0);
      if (tp.matches(ks) != want && ++mismatches <= 10)
        ADD_FAILURE() << "pattern '" << ps << "' key '" << ks << "' expected " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// TopicPattern keeps string_views into its own key_; a copy (or a move of a short, SSO-stored key)
// must still match with its own words, independent of the original object.
TEST(TopicMatcherTest, CopyIsIndependentOfTheOriginal) {
  TopicPattern a("a.b");
  TopicPattern copy = a;
  a = TopicPattern("x.y");  // overwrites a's (small-string) buffer in place
  EXPECT_EQ(copy.key(), "a.b");
  EXPECT_TRUE(copy.matches("a.b"));
  EXPECT_FALSE(copy.matches("x.y"));
}

TEST(TopicMatcherTest, MovedPatternsInAGrowingVectorStillMatch) {
  std::vector<TopicPattern> v;
  for (int i = 0; i < 64; ++i) v.emplace_back("k" + std::to_string(i) + ".*");  // reallocates
  for (int i = 0; i < 64; ++i) {
    std::string k = "k" + std::to_string(i);
    EXPECT_TRUE(v[i].matches(k + ".x")) << i;
    EXPECT_FALSE(v[i].matches("k" + std::to_string(i + 100) + ".x")) << i;
  }
}

TEST(TopicMatcherTest, AssignedPatternMatchesItsNewKey) {
  TopicPattern p("a.b");
  p = TopicPattern("c.d");
  EXPECT_EQ(p.key(), "c.d");
  EXPECT_TRUE(p.matches("c.d"));
  EXPECT_FALSE(p.matches("a.b"));
}

// ---- TopicTrie (topic_trie.h): the topic exchange's index must route as the patterns match.

// A distinct fake destination per binding number (never dereferenced).
Destination Fake(size_t i) { return Destination{reinterpret_cast<Queue*>(uintptr_t{i + 1}), nullptr}; }

std::vector<size_t> Routed(const TopicTrie& t, std::string_view key) {
  std::vector<size_t> out;
  t.match(key, [&](const Destination& d) { out.push_back(reinterpret_cast<uintptr_t>(d.queue) - 1); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TopicTrieTest, SharedCaseTable) {
  std::vector<testdata::TopicCase> cases;
  ASSERT_NO_THROW(cases = testdata::LoadTopicCases());
  for (const auto& c : cases) {
    TopicTrie t;
    t.add(c.pattern, Fake(0));
    for (bool want : {true, false})
      for (const auto& key : want ? c.match : c.no_match)
        EXPECT_EQ(Routed(t, key) == std::vector<size_t>{0}, want)
            << "pattern '" << c.pattern << "' key '" << key << "'";
  }
}

TEST(TopicTrieTest, AllSmallPatternsInOneTrieRouteAsTheReference) {
  // Every pattern of up to 3 words over {a, b, "", *, #}, all bound at once, against every key
  // of up to 4 words over {a, b, ""}; then with every other binding removed again.
  const std::vector<std::string> pwords = {"a", "b", "", "*", "#"};
  const std::vector<std::string> kwords = {"a", "b", ""};
  std::vector<std::string> patterns, keys;
  for (const auto& p : AllSequences(pwords, 3)) patterns.push_back(Join(p));
  for (const auto& k : AllSequences(kwords, 4)) keys.push_back(Join(k));
  TopicTrie t;
  for (size_t i = 0; i < patterns.size(); ++i) t.add(patterns[i], Fake(i));
  auto check = [&](const std::vector<bool>& bound) {
    int mismatches = 0;
    for (const auto& k : keys) {
      std::vector<size_t> want;
      for (size_t i = 0; i < patterns.size(); ++i)
        if (bound[i] && RefMatch(Split(patterns[i]), 0, Split(k), 0)) want.push_back(i);
      if (Routed(t, k) != want && ++mismatches <= 5) ADD_FAILURE() << "key '" << k << "'";
    }
    return mismatches;
  };
  std::vector<bool> bound(patterns.size(), true);
  EXPECT_EQ(check(bound), 0);
  for (size_t i = 0; i < patterns.size(); i += 2) {
    t.remove(patterns[i], Fake(i));
    bound[i] = false;
  }
  EXPECT_EQ(check(bound), 0);
  for (size_t i = 1; i < patterns.size(); i += 2) t.remove(patterns[i], Fake(i));
  EXPECT_TRUE(t.empty());  // every node pruned
}

TEST(TopicTrieTest, RepeatedBindingsCountAndRemoveOneAtATime) {
  TopicTrie t;
  t.add("a.#.#.b", Fake(0));  // consecutive '#' fold into one
  t.add("a.#.b", Fake(0));
  EXPECT_EQ(Routed(t, "a.b"), (std::vector<size_t>{0, 0}));
  t.remove("a.#.b", Fake(0));
  EXPECT_EQ(Routed(t, "a.x.y.b"), (std::vector<size_t>{0}));
  t.remove("a.#.b", Fake(1));  // not bound: nothing happens
  t.remove("a.#.#.b", Fake(0));
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(Routed(t, "a.b").empty());
}

}  // namespace
}  // namespace warren::broker
