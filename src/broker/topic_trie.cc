#include "broker/topic_trie.h"

#include <algorithm>

namespace warren::broker {

namespace {

// The words of a binding key, consecutive "#" folded into one (they match the same keys).
size_t pattern_words(std::string_view key, std::array<std::string_view, 256>& words) {
  const size_t count = std::min(split_topic_words(key, words.data(), words.size()), words.size());
  size_t out = 0;
  for (size_t i = 0; i < count; ++i) {
    if (words[i] == "#" && out > 0 && words[out - 1] == "#") continue;
    words[out++] = words[i];
  }
  return out;
}

}  // namespace

TopicTrie::Node* TopicTrie::child(Node& n, std::string_view word, bool create) {
  std::unique_ptr<Node>* slot = nullptr;
  if (word == "*") {
    slot = &n.star;
  } else if (word == "#") {
    slot = &n.hash;
  } else {
    auto it = n.words.find(word);
    if (it != n.words.end()) return it->second.get();
    if (!create) return nullptr;
    return n.words.emplace(std::string(word), std::make_unique<Node>()).first->second.get();
  }
  if (!*slot && create) *slot = std::make_unique<Node>();
  return slot->get();
}

void TopicTrie::add(std::string_view key, Destination d) {
  std::array<std::string_view, 256> words;
  const size_t count = pattern_words(key, words);
  Node* n = &root_;
  for (size_t i = 0; i < count; ++i) n = child(*n, words[i], true);
  n->destinations.push_back(d);
}

bool TopicTrie::remove_from(Node& n, const std::string_view* words, size_t count, size_t depth,
                            Destination d) {
  if (depth == count) {
    auto it = std::find(n.destinations.begin(), n.destinations.end(), d);
    if (it != n.destinations.end()) n.destinations.erase(it);
    return n.empty();
  }
  Node* next = child(n, words[depth], false);
  if (next == nullptr || !remove_from(*next, words, count, depth + 1, d)) return n.empty();
  // The child is empty now: unlink it.
  if (words[depth] == "*") {
    n.star.reset();
  } else if (words[depth] == "#") {
    n.hash.reset();
  } else {
    n.words.erase(n.words.find(words[depth]));
  }
  return n.empty();
}

void TopicTrie::remove(std::string_view key, Destination d) {
  std::array<std::string_view, 256> words;
  const size_t count = pattern_words(key, words);
  remove_from(root_, words.data(), count, 0, d);
}

}  // namespace warren::broker
