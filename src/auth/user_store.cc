#include "auth/user_store.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "common/field_table.h"

namespace warren::auth {
namespace {

std::string base64_encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string salted_sha256(std::string_view salt, std::string_view password) {
  std::string input(salt);
  input.append(password);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return std::string(salt) + std::string(reinterpret_cast<char*>(digest), sizeof(digest));
}

}  // namespace

std::string hash_password_sha256(std::string_view password) {
  unsigned char salt[4];
  RAND_bytes(salt, sizeof(salt));
  return base64_encode(salted_sha256(std::string_view(reinterpret_cast<char*>(salt), 4), password));
}

bool check_password_sha256(std::string_view hash_b64, std::string_view password) {
  auto raw = base64_decode(hash_b64);
  if (!raw || raw->size() != 4 + SHA256_DIGEST_LENGTH) return false;
  std::string expected = salted_sha256(std::string_view(*raw).substr(0, 4), password);
  return CRYPTO_memcmp(expected.data(), raw->data(), expected.size()) == 0;
}

void UserStore::add_user(std::string name, std::string_view password,
                         std::vector<std::string> tags) {
  User u{name, hash_password_sha256(password), std::move(tags)};
  users_[std::move(name)] = std::move(u);
}

const User* UserStore::find(std::string_view name) const {
  auto it = users_.find(std::string(name));
  return it == users_.end() ? nullptr : &it->second;
}

const User* UserStore::authenticate(std::string_view name, std::string_view password) const {
  const User* u = find(name);
  if (u == nullptr || !check_password_sha256(u->password_hash, password)) return nullptr;
  return u;
}

bool UserStore::loopback_only(std::string_view name) const {
  return std::find(loopback_users_.begin(), loopback_users_.end(), name) != loopback_users_.end();
}

std::optional<Credentials> parse_plain(std::string_view response) {
  // [authzid] \0 authcid \0 password
  size_t first = response.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  size_t second = response.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  return Credentials{std::string(response.substr(first + 1, second - first - 1)),
                     std::string(response.substr(second + 1))};
}

std::optional<Credentials> parse_amqplain(std::string_view response) {
  auto table = decode_table(response);
  if (!table) return std::nullopt;
  const FieldValue* login = table->find("LOGIN");
  const FieldValue* password = table->find("PASSWORD");
  if (login == nullptr || password == nullptr) return std::nullopt;
  auto l = login->as_string();
  auto p = password->as_string();
  if (!l || !p) return std::nullopt;
  return Credentials{std::string(*l), std::string(*p)};
}

}  // namespace warren::auth
