// Topic-exchange pattern matching with RabbitMQ's semantics: words are separated by '.', may be
// empty, '*' matches exactly one word and '#' zero or more; an empty key has zero words.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace warren::broker {

// A binding key split once at bind time so that each publish only splits the routing key.
class TopicPattern {
 public:
  explicit TopicPattern(std::string_view binding_key);
  bool matches(std::string_view routing_key) const;
  const std::string& key() const { return key_; }

 private:
  enum class Kind : uint8_t { kWord, kStar, kHash };
  struct Word {
    Kind kind;
    std::string text;  // owned: patterns are moved around inside binding vectors
  };
  std::string key_;
  std::vector<Word> words_;
};

// Splits a topic key into words as RabbitMQ does ("" -> no words, "a." -> {"a", ""}).
// Writes at most max_words entries and returns the total word count.
size_t split_topic_words(std::string_view key, std::string_view* words, size_t max_words);

}  // namespace warren::broker
