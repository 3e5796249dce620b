// Users and password checks. Passwords are stored as RabbitMQ stores them
// (rabbit_password_hashing_sha256): base64(salt(4) ++ sha256(salt ++ password)), so hashes move
// between Warren and RabbitMQ definitions exports unchanged.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warren::auth {

struct User {
  std::string name;
  std::string password_hash;  // base64, RabbitMQ SHA-256 format
  std::vector<std::string> tags;
};

class UserStore {
 public:
  void add_user(std::string name, std::string_view password, std::vector<std::string> tags);
  const User* find(std::string_view name) const;
  const std::unordered_map<std::string, User>& all() const { return users_; }  // warrenctl
  // The user if the password matches.
  const User* authenticate(std::string_view name, std::string_view password) const;

  // Users that may only log in from a loopback address (RabbitMQ's loopback_users).
  bool loopback_only(std::string_view name) const;
  void set_loopback_users(std::vector<std::string> names) { loopback_users_ = std::move(names); }

 private:
  std::unordered_map<std::string, User> users_;
  std::vector<std::string> loopback_users_{"guest"};
};

std::string hash_password_sha256(std::string_view password);
bool check_password_sha256(std::string_view hash_b64, std::string_view password);

// SASL responses: PLAIN is "\0user\0password"; AMQPLAIN is a field table body with LOGIN and
// PASSWORD. nullopt when malformed.
struct Credentials {
  std::string user;
  std::string password;
};
std::optional<Credentials> parse_plain(std::string_view response);
std::optional<Credentials> parse_amqplain(std::string_view response);

}  // namespace warren::auth
