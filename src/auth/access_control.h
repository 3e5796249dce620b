// Permissions of users in vhosts, as RabbitMQ's internal authorisation backend keeps them: three
// regular expressions per (user, vhost) for configure, write and read. A resource name is
// permitted when the expression matches anywhere in it (Erlang's re:run, unanchored unless the
// pattern has ^ or $); an empty expression means "^$" (rabbit_auth_backend_internal), so it
// permits only the empty name. Expressions have Perl syntax (ErlangRegex), as PCRE's.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/erlang_regex.h"
#include "auth/permission.h"
#include "auth/topic_permissions.h"

namespace warren::auth {

struct PermissionSet {
  std::string configure, write, read;  // the patterns as given
};

class AccessControl {
 public:
  // Fails when a pattern is not a valid regular expression (Erlang re's error for it).
  std::optional<InvalidPattern> set(const std::string& user, const std::string& vhost,
                                 PermissionSet p);
  bool clear(const std::string& user, const std::string& vhost);
  // Also the user's (the vhost's) topic permissions.
  void clear_user(const std::string& user);
  void clear_vhost(const std::string& vhost);

  bool has_vhost_access(std::string_view user, std::string_view vhost) const;
  bool permitted(std::string_view user, std::string_view vhost, Permission what,
                 std::string_view resource_name) const;

  // Topic permissions (topic_permissions.h), kept here so that generation() covers them too.
  std::optional<InvalidPattern> set_topic(const std::string& user, const std::string& vhost,
                                          const std::string& exchange, TopicPermissionSet p);
  bool clear_topic(const std::string& user, const std::string& vhost);
  bool clear_topic(const std::string& user, const std::string& vhost, const std::string& exchange);
  const TopicPermissions& topics() const { return topics_; }

  // Changes with every set or clear: a cached check is valid while this is unchanged.
  uint64_t generation() const { return generation_; }

  // (user, vhost) -> patterns, ordered by user then vhost.
  std::vector<std::pair<std::pair<std::string, std::string>, PermissionSet>> list() const;

 private:
  struct Compiled {
    PermissionSet patterns;
    ErlangRegex configure, write, read;
  };
  std::map<std::pair<std::string, std::string>, Compiled, std::less<>> entries_;
  TopicPermissions topics_;
  uint64_t generation_ = 1;
};

}  // namespace warren::auth
