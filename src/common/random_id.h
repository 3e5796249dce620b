// Random names the broker makes up (server-named queues, consumer tags, MQTT client ids): a
// prefix and 22 characters of URL-safe base64, 132 random bits, as RabbitMQ's rabbit_guid.
#pragma once

#include <random>
#include <string>
#include <string_view>

namespace warren {

inline std::string random_id(std::string_view prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id(prefix);
  for (int i = 0; i < 22; ++i) id.push_back(kAlphabet[rng() % 64]);
  return id;
}

}  // namespace warren
