#include "auth/topic_permissions.h"

#include <variant>

namespace warren::auth {

namespace {

constexpr std::string_view kClientId = "{client_id}";

void replace_all(std::string& s, std::string_view placeholder, std::string_view value) {
  for (size_t at = s.find(placeholder); at != std::string::npos;
       at = s.find(placeholder, at + value.size()))
    s.replace(at, placeholder.size(), value);
}

// RabbitMQ reads an empty pattern as "^$" before expanding it.
std::string_view effective(std::string_view given) { return given.empty() ? "^$" : given; }

// A pattern that does not compile once expanded (a user name with a '(' in it) matches nothing:
// RabbitMQ's re:run fails on it and the check does not pass either.
ErlangRegex compile_or_nothing(std::string_view pattern) {
  auto r = ErlangRegex::compile(pattern);
  if (auto* re = std::get_if<ErlangRegex>(&r)) return std::move(*re);
  return ErlangRegex();
}

constexpr size_t kMaxClientPatterns = 4096;

}  // namespace

std::string expand_topic_variables(std::string_view pattern, const TopicVariables& v) {
  std::string out(pattern);
  if (v.client_id) replace_all(out, kClientId, *v.client_id);
  replace_all(out, "{username}", v.username);
  replace_all(out, "{vhost}", v.vhost);
  return out;
}

TopicPermissions::Pattern TopicPermissions::compile(std::string_view given,
                                                    const TopicVariables& fixed) const {
  Pattern p;
  p.given = given;
  p.expanded = compile_or_nothing(expand_topic_variables(effective(given), fixed));
  p.names_client_id = effective(given).find(kClientId) != std::string_view::npos;
  return p;
}

std::optional<InvalidPattern> TopicPermissions::set(const std::string& user,
                                                    const std::string& vhost,
                                                    const std::string& exchange,
                                                    TopicPermissionSet p) {
  // As rabbit_auth_backend_internal:set_topic_permissions: the patterns as given must compile.
  for (const std::string* given : {&p.write, &p.read}) {
    auto r = ErlangRegex::compile(*given);
    if (auto* e = std::get_if<RegexError>(&r)) return InvalidPattern{*given, *e};
  }
  const TopicVariables fixed{user, vhost, std::nullopt};
  Compiled c{compile(p.write, fixed), compile(p.read, fixed)};
  entries_[user][vhost][exchange] = std::move(c);
  with_client_id_.clear();
  return std::nullopt;
}

bool TopicPermissions::clear(const std::string& user, const std::string& vhost) {
  with_client_id_.clear();
  auto it = entries_.find(user);
  if (it == entries_.end()) return false;
  const bool erased = it->second.erase(vhost) > 0;
  if (it->second.empty()) entries_.erase(it);
  return erased;
}

bool TopicPermissions::clear(const std::string& user, const std::string& vhost,
                             const std::string& exchange) {
  with_client_id_.clear();
  auto by_user = entries_.find(user);
  if (by_user == entries_.end()) return false;
  auto by_vhost = by_user->second.find(vhost);
  if (by_vhost == by_user->second.end()) return false;
  const bool erased = by_vhost->second.erase(exchange) > 0;
  if (by_vhost->second.empty()) by_user->second.erase(by_vhost);
  if (by_user->second.empty()) entries_.erase(by_user);
  return erased;
}

void TopicPermissions::clear_user(const std::string& user) {
  entries_.erase(user);
  with_client_id_.clear();
}

void TopicPermissions::clear_vhost(const std::string& vhost) {
  for (auto& [user, vhosts] : entries_) vhosts.erase(vhost);
  std::erase_if(entries_, [](const auto& e) { return e.second.empty(); });
  with_client_id_.clear();
}

const TopicPermissions::Exchanges* TopicPermissions::find(std::string_view user,
                                                          std::string_view vhost) const {
  if (entries_.empty()) return nullptr;  // the usual case: nobody has topic permissions
  auto by_user = entries_.find(user);
  if (by_user == entries_.end()) return nullptr;
  auto by_vhost = by_user->second.find(vhost);
  return by_vhost == by_user->second.end() ? nullptr : &by_vhost->second;
}

bool TopicPermissions::any(std::string_view user, std::string_view vhost) const {
  return find(user, vhost) != nullptr;
}

bool TopicPermissions::search(const Pattern& p, std::string_view routing_key,
                              const TopicVariables& v) const {
  if (!v.client_id || !p.names_client_id) return p.expanded.search(routing_key);
  std::string expanded = expand_topic_variables(effective(p.given), v);
  auto it = with_client_id_.find(expanded);
  if (it == with_client_id_.end()) {
    if (with_client_id_.size() >= kMaxClientPatterns) with_client_id_.clear();
    ErlangRegex re = compile_or_nothing(expanded);
    it = with_client_id_.emplace(std::move(expanded), std::move(re)).first;
  }
  return it->second.search(routing_key);
}

bool TopicPermissions::permitted(std::string_view exchange, Permission what,
                                 std::string_view routing_key, const TopicVariables& v) const {
  const Exchanges* exchanges = find(v.username, v.vhost);
  if (exchanges == nullptr) return true;
  auto it = exchanges->find(exchange);
  if (it == exchanges->end()) return true;
  const Compiled& c = it->second;
  return search(what == Permission::kRead ? c.read : c.write, routing_key, v);
}

std::vector<TopicPermissionEntry> TopicPermissions::list() const {
  std::vector<TopicPermissionEntry> out;
  for (const auto& [user, vhosts] : entries_)
    for (const auto& [vhost, exchanges] : vhosts)
      for (const auto& [exchange, c] : exchanges)
        out.push_back({user, vhost, exchange, {c.write.given, c.read.given}});
  return out;
}

}  // namespace warren::auth
