// Topic matching with RabbitMQ's semantics (rabbit_exchange_type_topic): words split on '.', empty
// words allowed, '*' = exactly one word, '#' = zero or more words, "" = zero words.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "broker/topic_matcher.h"

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

TEST(TopicMatcherTest, TutorialBindings) {
  // RabbitMQ tutorial 5: Q1 *.orange.*, Q2 *.*.rabbit and lazy.#
  struct Case {
    const char* key;
    bool q1_orange, q2_rabbit, q2_lazy;
  } cases[] = {
      {"quick.orange.rabbit", true, true, false},
      {"lazy.orange.elephant", true, false, true},
      {"quick.orange.fox", true, false, false},
      {"lazy.brown.fox", false, false, true},
      {"lazy.pink.rabbit", false, true, true},
      {"quick.brown.fox", false, false, false},
      {"quick.orange.male.rabbit", false, false, false},
      {"lazy.orange.male.rabbit", false, false, true},
      {"orange", false, false, false},
      {"lazy", false, false, true},
  };
  TopicPattern orange("*.orange.*"), rabbit("*.*.rabbit"), lazy("lazy.#");
  for (const auto& c : cases) {
    EXPECT_EQ(orange.matches(c.key), c.q1_orange) << c.key;
    EXPECT_EQ(rabbit.matches(c.key), c.q2_rabbit) << c.key;
    EXPECT_EQ(lazy.matches(c.key), c.q2_lazy) << c.key;
  }
}

TEST(TopicMatcherTest, HashMatchesEverythingIncludingEmptyKey) {
  for (const char* key : {"", "a", "a.b", ".", "..", "a..b", "#", "*", "a.b.c.d.e.f"})
    EXPECT_TRUE(M("#", key)) << key;
  EXPECT_TRUE(M("#.#", ""));
  EXPECT_TRUE(M("#.#", "a"));
  EXPECT_TRUE(M("#.#", "a.b.c"));
  EXPECT_TRUE(M("#.#.#", "."));
}

TEST(TopicMatcherTest, StarNeedsExactlyOneWord) {
  EXPECT_FALSE(M("*", ""));
  EXPECT_TRUE(M("*", "a"));
  EXPECT_TRUE(M("*", "*"));
  EXPECT_FALSE(M("*", "a.b"));
  EXPECT_FALSE(M("*", "."));  // two empty words
  EXPECT_TRUE(M("*.*", "."));
  EXPECT_TRUE(M("a.*", "a."));  // "a." = {"a", ""}: '*' matches the empty word
  EXPECT_TRUE(M("*.a", ".a"));
  EXPECT_FALSE(M("a.*", "a"));
  EXPECT_TRUE(M("*.*", "a.b"));
  EXPECT_FALSE(M("*.*", "a"));
  EXPECT_FALSE(M("*.*", "a.b.c"));
}

TEST(TopicMatcherTest, StarHashCombinations) {
  EXPECT_FALSE(M("*.#", ""));
  EXPECT_TRUE(M("*.#", "a"));
  EXPECT_TRUE(M("*.#", "a.b.c"));
  EXPECT_FALSE(M("#.*", ""));
  EXPECT_TRUE(M("#.*", "a"));
  EXPECT_TRUE(M("#.*", "a.b"));
  EXPECT_FALSE(M("a.*.#", "a"));
  EXPECT_TRUE(M("a.*.#", "a.b"));
  EXPECT_TRUE(M("a.*.#", "a.b.c.d"));
  EXPECT_TRUE(M("a.*.#", "a."));
  EXPECT_FALSE(M("a.*.#", "b.c"));
  EXPECT_FALSE(M("*.*.#", "a"));
  EXPECT_TRUE(M("#.*.#", "x"));
  EXPECT_FALSE(M("#.*.#", ""));
}

TEST(TopicMatcherTest, HashInTheMiddle) {
  EXPECT_TRUE(M("a.#.b", "a.b"));
  EXPECT_TRUE(M("a.#.b", "a.x.b"));
  EXPECT_TRUE(M("a.#.b", "a.x.y.b"));
  EXPECT_TRUE(M("a.#.b", "a.b.b"));
  EXPECT_TRUE(M("a.#.b", "a..b"));
  EXPECT_FALSE(M("a.#.b", "a"));
  EXPECT_FALSE(M("a.#.b", "b"));
  EXPECT_FALSE(M("a.#.b", "a.b.c"));
  EXPECT_FALSE(M("a.#.b", "x.a.b"));
  EXPECT_TRUE(M("#.a.#", "a"));
  EXPECT_TRUE(M("#.a.#", "x.a.y"));
  EXPECT_FALSE(M("#.a.#", "x.y"));
  EXPECT_TRUE(M("#.b", "b"));
  EXPECT_TRUE(M("#.b", "a.a.b"));
  EXPECT_FALSE(M("#.b", "b.a"));
}

TEST(TopicMatcherTest, EmptyBindingKeyMatchesOnlyEmptyRoutingKey) {
  EXPECT_TRUE(M("", ""));
  EXPECT_FALSE(M("", "a"));
  EXPECT_FALSE(M("", "."));
  EXPECT_FALSE(M("", "#"));
  EXPECT_FALSE(M("", "*"));
}

TEST(TopicMatcherTest, EmptyWords) {
  EXPECT_TRUE(M("a..b", "a..b"));
  EXPECT_TRUE(M("a.*.b", "a..b"));
  EXPECT_FALSE(M("a.*.b", "a.b"));
  EXPECT_FALSE(M("a..b", "a.b"));
  EXPECT_FALSE(M("a..b", "a.x.b"));
  EXPECT_TRUE(M(".", "."));
  EXPECT_FALSE(M(".", ""));
  EXPECT_FALSE(M("", "."));
  EXPECT_TRUE(M("a.", "a."));
  EXPECT_FALSE(M("a.", "a"));
  EXPECT_FALSE(M("a", "a."));
  EXPECT_TRUE(M("#.", "."));  // {"#", ""} vs {"", ""}
  EXPECT_TRUE(M("#.", "a."));
  EXPECT_FALSE(M("#.", "a"));
  EXPECT_TRUE(M(".#", "."));
  EXPECT_FALSE(M(".#", ""));
}

TEST(TopicMatcherTest, ExactWordsAndLiteralWildcardCharacters) {
  EXPECT_TRUE(M("stock.usd.nyse", "stock.usd.nyse"));
  EXPECT_FALSE(M("stock.usd.nyse", "stock.usd.nyse.x"));
  EXPECT_FALSE(M("stock.usd.nyse", "stock.usd"));
  EXPECT_FALSE(M("stock.usd.nyse", "Stock.usd.nyse"));  // case-sensitive
  EXPECT_FALSE(M("stock.usd.nyse", "stock.usd.nysE"));
  // Only whole words '*' and '#' are wildcards.
  EXPECT_FALSE(M("a*", "ab"));
  EXPECT_TRUE(M("a*", "a*"));
  EXPECT_FALSE(M("a#", "a"));
  EXPECT_TRUE(M("a#.b", "a#.b"));
  EXPECT_FALSE(M("a#.b", "a.b"));
  EXPECT_FALSE(M("**", "a"));
  EXPECT_TRUE(M("**", "**"));
  EXPECT_FALSE(M("##", "a"));
  // A routing key's '*' and '#' are literal words.
  EXPECT_FALSE(M("a", "*"));
  EXPECT_FALSE(M("a.b", "#"));
  EXPECT_TRUE(M("#", "#"));
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

TEST(TopicMatcherTest, PathologicalPatternsAreFast) {
  std::string a128;
  for (int i = 0; i < 128; ++i) a128 += (i ? ".a" : "a");
  std::string a127b = a128.substr(0, 253) + ".b";
  ASSERT_EQ(a127b.size(), 255u);
  TopicPattern hashes("#.#.#.#.#.a");
  TopicPattern alternating("#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.a.#.b");
  TopicPattern mixed("#.*.#.*.#.*.#.*.#.*.#.*.#.c");
  auto start = std::chrono::steady_clock::now();
  int hits = 0;
  for (int i = 0; i < 2000; ++i) {
    hits += hashes.matches(a128);      // true
    hits += hashes.matches(a127b);     // false
    hits += alternating.matches(a128); // false: no trailing b
    hits += alternating.matches(a127b);// true
    hits += mixed.matches(a128);       // false
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(hits, 4000);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 500)
      << "10000 matches of pathological patterns should take a few milliseconds";
}

TEST(TopicMatcherTest, AgreesWithReferenceOnAllSmallPatternsAndKeys) {
  // Every pattern of up to 4 words over {a, b, "", *, #} against every key of up to 4 words over
  // {a, b, ""}.
  const std::vector<std::string> pwords = {"a", "b", "", "*", "#"};
  const std::vector<std::string> kwords = {"a", "b", ""};
  auto all = [](const std::vector<std::string>& alphabet, size_t max_len) {
    std::vector<std::vector<std::string>> out = {{}};
    std::vector<std::vector<std::string>> frontier = {{}};
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
  };
  std::vector<std::string> patterns, keys;
  for (const auto& p : all(pwords, 4)) patterns.push_back(Join(p));
  for (const auto& k : all(kwords, 4)) keys.push_back(Join(k));
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

}  // namespace
}  // namespace warren::broker
