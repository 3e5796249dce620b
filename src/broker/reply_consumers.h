// Direct reply-to: the consumers of the pseudo-queue amq.rabbitmq.reply-to, by the token in the
// reply address (amq.rabbitmq.reply-to.<token>) handed to the requester's responders.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/exchange.h"

namespace warren::broker {

struct Consumer;

inline constexpr std::string_view kReplyToQueue = "amq.rabbitmq.reply-to";

class ReplyConsumers {
 public:
  void add(const std::string& token, Consumer* c) { consumers_[token] = c; }
  void remove(const std::string& token) { consumers_.erase(token); }
  Consumer* find(std::string_view token) const {
    auto it = consumers_.find(token);
    return it == consumers_.end() ? nullptr : it->second;
  }
  // The token of a reply address, or empty if `name` is not one.
  static std::string_view token_of(std::string_view name) {
    if (name.size() > kReplyToQueue.size() + 1 && name.starts_with(kReplyToQueue) &&
        name[kReplyToQueue.size()] == '.')
      return name.substr(kReplyToQueue.size() + 1);
    return {};
  }

 private:
  std::unordered_map<std::string, Consumer*, StringHash, std::equal_to<>> consumers_;
};

}  // namespace warren::broker
