#include "auth/access_control.h"

namespace warren::auth {
std::optional<InvalidPattern> AccessControl::set(const std::string& user, const std::string& vhost,
                                                PermissionSet p) {
  ErlangRegex compiled[3];
  const std::string* patterns[3] = {&p.configure, &p.write, &p.read};
  for (int i = 0; i < 3; ++i) {
    // An empty pattern permits nothing, as RabbitMQ treats it as "^$".
    auto r = ErlangRegex::compile(patterns[i]->empty() ? std::string_view("^$") : *patterns[i]);
    if (auto* e = std::get_if<RegexError>(&r)) return InvalidPattern{*patterns[i], *e};
    compiled[i] = std::get<ErlangRegex>(std::move(r));
  }
  ++generation_;
  entries_[{user, vhost}] = Compiled{std::move(p), std::move(compiled[0]), std::move(compiled[1]),
                                     std::move(compiled[2])};
  return std::nullopt;
}

bool AccessControl::clear(const std::string& user, const std::string& vhost) {
  ++generation_;
  return entries_.erase({user, vhost}) > 0;
}

void AccessControl::clear_user(const std::string& user) {
  ++generation_;
  std::erase_if(entries_, [&](const auto& e) { return e.first.first == user; });
  topics_.clear_user(user);
}

void AccessControl::clear_vhost(const std::string& vhost) {
  ++generation_;
  std::erase_if(entries_, [&](const auto& e) { return e.first.second == vhost; });
  topics_.clear_vhost(vhost);
}

std::optional<InvalidPattern> AccessControl::set_topic(const std::string& user,
                                                       const std::string& vhost,
                                                       const std::string& exchange,
                                                       TopicPermissionSet p) {
  if (auto bad = topics_.set(user, vhost, exchange, std::move(p))) return bad;
  ++generation_;
  return std::nullopt;
}

bool AccessControl::clear_topic(const std::string& user, const std::string& vhost) {
  ++generation_;
  return topics_.clear(user, vhost);
}

bool AccessControl::clear_topic(const std::string& user, const std::string& vhost,
                                const std::string& exchange) {
  ++generation_;
  return topics_.clear(user, vhost, exchange);
}

bool AccessControl::has_vhost_access(std::string_view user, std::string_view vhost) const {
  return entries_.contains(std::pair{std::string(user), std::string(vhost)});
}

bool AccessControl::permitted(std::string_view user, std::string_view vhost, Permission what,
                              std::string_view name) const {
  auto it = entries_.find(std::pair{std::string(user), std::string(vhost)});
  if (it == entries_.end()) return false;
  const Compiled& c = it->second;
  const ErlangRegex& re = what == Permission::kConfigure ? c.configure
                          : what == Permission::kWrite   ? c.write
                                                         : c.read;
  return re.search(name);
}

std::vector<std::pair<std::pair<std::string, std::string>, PermissionSet>> AccessControl::list()
    const {
  std::vector<std::pair<std::pair<std::string, std::string>, PermissionSet>> out;
  for (const auto& [key, c] : entries_) out.emplace_back(key, c.patterns);
  return out;
}

}  // namespace warren::auth
