// Topic permissions, as RabbitMQ's internal authorisation backend keeps them (3.10+): per user,
// vhost and exchange a write and a read regular expression, matched against routing keys
// (publishing) and binding keys (binding, subscribing). A user without a topic permission for an
// exchange may use every routing key on it. Patterns may name {username}, {vhost} and, for MQTT
// connections, {client_id}; these are replaced by the connection's values (plain text, not
// escaped, as rabbit_auth_backend_internal:expand_topic_permission does) before matching.
// Matching is unanchored (Erlang's re:run); an empty pattern means "^$".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "auth/erlang_regex.h"
#include "auth/permission.h"

namespace warren::auth {

struct TopicPermissionSet {
  std::string write, read;  // the patterns as given
};

// What a connection substitutes into a pattern. client_id only for MQTT (RabbitMQ's MQTT plugin
// is the only one that adds it to the variable map); elsewhere {client_id} stays literal.
struct TopicVariables {
  std::string_view username, vhost;
  std::optional<std::string_view> client_id;
};

// Replaces {client_id}, then {username}, then {vhost} (the order of RabbitMQ's maps:fold over
// its variable map), each everywhere it occurs, without regex escaping.
std::string expand_topic_variables(std::string_view pattern, const TopicVariables& v);

struct TopicPermissionEntry {
  std::string user, vhost, exchange;
  TopicPermissionSet permissions;
};

class TopicPermissions {
 public:
  // Fails when a pattern, as given (before expansion), is not a valid regular expression.
  std::optional<InvalidPattern> set(const std::string& user, const std::string& vhost,
                                    const std::string& exchange, TopicPermissionSet p);
  bool clear(const std::string& user, const std::string& vhost);  // every exchange
  bool clear(const std::string& user, const std::string& vhost, const std::string& exchange);
  void clear_user(const std::string& user);
  void clear_vhost(const std::string& vhost);

  // Whether the user has any topic permission in the vhost: without one no check can refuse,
  // so callers skip the lookup (and the regex) on their hot path.
  bool any(std::string_view user, std::string_view vhost) const;

  // rabbit_auth_backend_internal:check_topic_access. what is kWrite or kRead.
  bool permitted(std::string_view exchange, Permission what, std::string_view routing_key,
                 const TopicVariables& v) const;

  // Ordered by user, vhost, then exchange.
  std::vector<TopicPermissionEntry> list() const;

 private:
  struct Pattern {
    std::string given;
    // Compiled with {username} and {vhost} expanded (they are fixed by the key); valid for every
    // connection unless client_id is known and the pattern names it.
    ErlangRegex expanded;
    bool names_client_id = false;
  };
  struct Compiled {
    Pattern write, read;
  };
  using Exchanges = std::map<std::string, Compiled, std::less<>>;

  Pattern compile(std::string_view given, const TopicVariables& fixed) const;
  bool search(const Pattern& p, std::string_view routing_key, const TopicVariables& v) const;

  const Exchanges* find(std::string_view user, std::string_view vhost) const;

  // user -> vhost -> exchange; nested so that a check looks up string_views without copying.
  std::map<std::string, std::map<std::string, Exchanges, std::less<>>, std::less<>> entries_;
  // Patterns expanded with a client id, compiled on first use (MQTT connections differ only in
  // it). Cleared on every change and when it grows past a bound.
  mutable std::unordered_map<std::string, ErlangRegex> with_client_id_;
};

}  // namespace warren::auth
