#include "auth/access_control.h"

namespace warren::auth {
namespace {

std::optional<std::regex> compile(const std::string& pattern) {
  try {  // std::regex reports a bad pattern only by throwing; caught here, at the edge
    return std::regex(pattern.empty() ? std::string("^$") : pattern, std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<std::string> AccessControl::set(const std::string& user, const std::string& vhost,
                                              PermissionSet p) {
  auto c = compile(p.configure), w = compile(p.write), r = compile(p.read);
  for (auto [re, pattern] : {std::pair{&c, &p.configure}, {&w, &p.write}, {&r, &p.read}})
    if (!*re) return "invalid regular expression '" + *pattern + "'";
  ++generation_;
  entries_[{user, vhost}] = Compiled{std::move(p), std::move(*c), std::move(*w), std::move(*r)};
  return std::nullopt;
}

bool AccessControl::clear(const std::string& user, const std::string& vhost) {
  ++generation_;
  return entries_.erase({user, vhost}) > 0;
}

void AccessControl::clear_user(const std::string& user) {
  ++generation_;
  std::erase_if(entries_, [&](const auto& e) { return e.first.first == user; });
}

void AccessControl::clear_vhost(const std::string& vhost) {
  ++generation_;
  std::erase_if(entries_, [&](const auto& e) { return e.first.second == vhost; });
}

bool AccessControl::has_vhost_access(std::string_view user, std::string_view vhost) const {
  return entries_.contains(std::pair{std::string(user), std::string(vhost)});
}

bool AccessControl::permitted(std::string_view user, std::string_view vhost, Permission what,
                              std::string_view name) const {
  auto it = entries_.find(std::pair{std::string(user), std::string(vhost)});
  if (it == entries_.end()) return false;
  const Compiled& c = it->second;
  const std::regex& re = what == Permission::kConfigure ? c.configure
                         : what == Permission::kWrite   ? c.write
                                                        : c.read;
  return std::regex_search(name.begin(), name.end(), re);
}

std::vector<std::pair<std::pair<std::string, std::string>, PermissionSet>> AccessControl::list()
    const {
  std::vector<std::pair<std::pair<std::string, std::string>, PermissionSet>> out;
  for (const auto& [key, c] : entries_) out.emplace_back(key, c.patterns);
  return out;
}

}  // namespace warren::auth
