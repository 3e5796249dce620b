#include "mqtt/topic.h"

#include <algorithm>

namespace warren::mqtt {

std::string topic_to_routing_key(std::string_view topic) {
  std::string out(topic);
  for (char& c : out) {
    if (c == '/') c = '.';
    else if (c == '+') c = '*';
  }
  return out;
}

std::string routing_key_to_topic(std::string_view routing_key) {
  std::string out(routing_key);
  for (char& c : out) {
    if (c == '*') c = '+';
    else if (c == '.') c = '/';
  }
  return out;
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t end = filter.find('/', start);
    std::string_view level =
        filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) return false;
      if (level == "#" && end != std::string_view::npos) return false;
    }
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  if (!topic.empty() && topic[0] == '$' && !filter.empty() && (filter[0] == '+' || filter[0] == '#'))
    return false;
  size_t f = 0, t = 0;
  while (true) {
    const size_t f_end = std::min(filter.find('/', f), filter.size());
    std::string_view level = filter.substr(f, f_end - f);
    if (level == "#") return true;  // also matches the parent level ("a/#" matches "a")
    const size_t t_end = std::min(topic.find('/', t), topic.size());
    if (level != "+" && level != topic.substr(t, t_end - t)) return false;
    const bool filter_done = f_end == filter.size();
    const bool topic_done = t_end == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      if (topic_done && !filter_done) return filter.substr(f_end) == "/#";
      return false;
    }
    f = f_end + 1;
    t = t_end + 1;
  }
}

}  // namespace warren::mqtt
