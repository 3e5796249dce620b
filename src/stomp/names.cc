#include "stomp/names.h"

#include <charconv>
#include <random>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace warren::stomp {

namespace {

std::string base64url(const unsigned char* data, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | data[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);  // no padding
  return out;
}

std::string random_guid() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    for (unsigned char& b : bytes) b = static_cast<unsigned char>(rng());
  }
  return base64url(bytes, sizeof bytes);
}

// An Erlang string (a list of bytes) in the external term format: STRING_EXT, or NIL_EXT when
// empty, or LIST_EXT of SMALL_INTEGER_EXT past STRING_EXT's 65535 bytes.
void append_erlang_string(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.push_back(106);
    return;
  }
  if (s.size() <= 65535) {
    out.push_back(107);
    out.push_back(static_cast<char>(s.size() >> 8));
    out.push_back(static_cast<char>(s.size() & 0xff));
    out.append(s);
    return;
  }
  out.push_back(108);
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  for (char c : s) {
    out.push_back(97);
    out.push_back(c);
  }
  out.push_back(106);
}

}  // namespace

std::string new_session_id() { return "session-" + random_guid(); }

std::string durable_subscription_queue(std::string_view routing_key, std::string_view id) {
  std::string term{char(131), char(104), char(2)};  // version, SMALL_TUPLE_EXT of arity 2
  append_erlang_string(term, routing_key);
  append_erlang_string(term, id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(term.data(), term.size(), digest, &len, EVP_md5(), nullptr);
  return "stomp-subscription-" + base64url(digest, len);
}

std::string random_subscription_queue() { return "stomp-subscription-" + random_guid(); }

std::string message_id(std::string_view consumer_tag, std::string_view session,
                       uint64_t delivery_tag) {
  std::string out(consumer_tag);
  out += "@@";
  out.append(session);
  out += "@@";
  out += std::to_string(delivery_tag);
  return out;
}

std::optional<ParsedMessageId> parse_message_id(std::string_view id) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t sep = id.find("@@", start);
    if (sep == std::string_view::npos) {
      parts.push_back(id.substr(start));
      break;
    }
    parts.push_back(id.substr(start, sep - start));
    start = sep + 2;
  }
  if (parts.size() != 3) return std::nullopt;
  ParsedMessageId out{std::string(parts[0]), std::nullopt};
  uint64_t tag = 0;
  auto [p, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), tag);
  if (!parts[2].empty() && ec == std::errc() && p == parts[2].data() + parts[2].size())
    out.delivery_tag = tag;
  return out;
}

}  // namespace warren::stomp
