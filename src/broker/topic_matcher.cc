#include "broker/topic_matcher.h"

#include <array>

namespace warren::broker {

size_t split_topic_words(std::string_view key, std::string_view* words, size_t max_words) {
  if (key.empty()) return 0;
  size_t n = 0;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string_view w = key.substr(start, dot == std::string_view::npos ? key.npos : dot - start);
    if (n < max_words) words[n] = w;
    ++n;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return n;
}

TopicPattern::TopicPattern(std::string_view binding_key) : key_(binding_key) {
  std::string_view k = key_;
  size_t count = split_topic_words(k, nullptr, 0);
  std::vector<std::string_view> parts(count);
  split_topic_words(k, parts.data(), count);
  for (std::string_view p : parts) {
    Kind kind = p == "*" ? Kind::kStar : p == "#" ? Kind::kHash : Kind::kWord;
    // Consecutive '#' are equivalent to one and would only make matching slower.
    if (kind == Kind::kHash && !words_.empty() && words_.back().kind == Kind::kHash) continue;
    words_.push_back({kind, std::string(p)});
  }
}

bool TopicPattern::matches(std::string_view routing_key) const {
  // Routing keys are at most 255 bytes, so at most 128 words; the stack array always suffices.
  std::array<std::string_view, 256> keyw;
  size_t nk = split_topic_words(routing_key, keyw.data(), keyw.size());
  if (nk > keyw.size()) return false;
  size_t np = words_.size();
  // reach[j]: pattern prefix consumed so far can match the first j key words. Row by pattern word.
  std::array<bool, 257> reach{};
  std::array<bool, 257> next{};
  reach[0] = true;
  for (size_t i = 0; i < np; ++i) {
    const Word& w = words_[i];
    next.fill(false);
    if (w.kind == Kind::kHash) {
      bool any = false;
      for (size_t j = 0; j <= nk; ++j) {
        any = any || reach[j];
        next[j] = any;
      }
    } else {
      for (size_t j = 0; j < nk; ++j)
        if (reach[j] && (w.kind == Kind::kStar || w.text == keyw[j])) next[j + 1] = true;
    }
    reach = next;
  }
  return reach[nk];
}

}  // namespace warren::broker
