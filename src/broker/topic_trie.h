// A topic exchange's bindings as a trie of binding-key words (RabbitMQ's rabbit_db_topic_exchange
// does the same): a publish walks the routing key's words through the trie, so routing costs
// what the key's words match, not one pattern test per binding. With many subscribers on one
// exchange (an MQTT client per device, each bound to its own topic) that is the difference
// between a few node lookups and a scan of every binding per message.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/exchange_destination.h"
#include "broker/topic_matcher.h"

namespace warren::broker {

class TopicTrie {
 public:
  // A binding of `key` to d; bindings that differ only by arguments are added once each.
  void add(std::string_view key, Destination d);
  // Removes one binding of `key` to d (nothing if there is none).
  void remove(std::string_view key, Destination d);
  // Calls emit(Destination) once for each binding whose key matches routing_key (a destination
  // bound by several matching keys is emitted once per key: the caller deduplicates queues).
  template <class Emit>
  void match(std::string_view routing_key, Emit&& emit) const;
  bool empty() const { return root_.empty(); }

 private:
  struct Node {
    std::unordered_map<std::string, std::unique_ptr<Node>, StringHash, std::equal_to<>> words;
    std::unique_ptr<Node> star;  // "*": exactly one word
    std::unique_ptr<Node> hash;  // "#": zero or more words
    std::vector<Destination> destinations;  // bindings whose key ends here
    bool empty() const {
      return words.empty() && !star && !hash && destinations.empty();
    }
  };
  // The node of `word` under n (created when create), or null.
  static Node* child(Node& n, std::string_view word, bool create);
  // Removes key's path below n from `depth` on, pruning nodes left empty. True if n is empty.
  static bool remove_from(Node& n, const std::string_view* words, size_t count, size_t depth,
                          Destination d);
  // The key nodes reached so far by one match: with "#" several paths can reach the same one,
  // whose bindings are emitted once. Few per publish: a short list on the stack (no allocation
  // per message), spilling to the heap only past 16.
  struct Reached {
    std::array<const Node*, 16> inline_nodes;
    size_t size = 0;
    std::vector<const Node*> more;
    bool first_time(const Node* n) {
      for (size_t i = 0; i < size; ++i)
        if (inline_nodes[i] == n) return false;
      for (const Node* r : more)
        if (r == n) return false;
      if (size < inline_nodes.size()) inline_nodes[size++] = n;
      else more.push_back(n);
      return true;
    }
  };
  template <class Emit>
  static void walk(const Node& n, const std::string_view* words, size_t count, size_t i,
                   Emit& emit, Reached& reached);

  Node root_;
};

template <class Emit>
void TopicTrie::walk(const Node& n, const std::string_view* words, size_t count, size_t i,
                     Emit& emit, Reached& reached) {
  // "#" here consumes words [i, j) for every j: zero words up to all that are left.
  if (n.hash)
    for (size_t j = i; j <= count; ++j) walk(*n.hash, words, count, j, emit, reached);
  if (i == count) {
    if (!n.destinations.empty() && reached.first_time(&n))
      for (const Destination& d : n.destinations) emit(d);
    return;
  }
  if (!n.words.empty()) {
    auto it = n.words.find(words[i]);
    if (it != n.words.end()) walk(*it->second, words, count, i + 1, emit, reached);
  }
  if (n.star) walk(*n.star, words, count, i + 1, emit, reached);
}

template <class Emit>
void TopicTrie::match(std::string_view routing_key, Emit&& emit) const {
  // Routing keys are at most 255 bytes, so at most 128 words.
  std::array<std::string_view, 256> words;
  const size_t count = split_topic_words(routing_key, words.data(), words.size());
  if (count > words.size()) return;
  Reached reached;
  walk(root_, words.data(), count, 0, emit, reached);
}

}  // namespace warren::broker
