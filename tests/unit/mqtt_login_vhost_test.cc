// How an MQTT login picks its vhost (mqtt/login_vhost.h), in RabbitMQ's order.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "mqtt/login_vhost.h"

namespace warren::mqtt {
namespace {

TEST(MqttLoginVhost, UserNamePrefixThenPortMappingThenDefault) {
  Settings s;
  s.vhost = "default";
  boost::json::value ports = boost::json::parse(R"({"1883": "by-port", "8883": 7})");
  auto v = login_vhost("v1:alice", nullptr, 1883, s, &ports, nullptr);
  EXPECT_EQ(v.vhost, "v1");
  EXPECT_EQ(v.user, "alice");
  v = login_vhost("a:b:alice", nullptr, 1883, s, &ports, nullptr);  // the last colon splits
  EXPECT_EQ(v.vhost, "a:b");
  v = login_vhost("alice", nullptr, 1883, s, &ports, nullptr);
  EXPECT_EQ(v.vhost, "by-port");
  EXPECT_EQ(v.user, "alice");
  EXPECT_EQ(login_vhost("alice", nullptr, 1884, s, &ports, nullptr).vhost, "default");
  EXPECT_EQ(login_vhost("alice", nullptr, 8883, s, &ports, nullptr).vhost, "default");  // not a string
  EXPECT_EQ(login_vhost("alice", nullptr, 1883, s, nullptr, nullptr).vhost, "default");
  s.ignore_colons_in_username = true;
  v = login_vhost("v1:alice", nullptr, 1883, s, &ports, nullptr);
  EXPECT_EQ(v.vhost, "by-port");
  EXPECT_EQ(v.user, "v1:alice");
}

TEST(MqttLoginVhost, CertificateMappingComesFirst) {
  Settings s;
  boost::json::value ports = boost::json::parse(R"({"8883": "by-port"})");
  boost::json::value certs = boost::json::parse(R"({"device-1": "by-cert"})");
  const std::string known = "device-1", unknown = "device-2";
  EXPECT_EQ(login_vhost("device-1", &known, 8883, s, &ports, &certs).vhost, "by-cert");
  EXPECT_EQ(login_vhost("device-2", &unknown, 8883, s, &ports, &certs).vhost, "by-port");
  // Neither mapping: the user name's prefix, else mqtt.vhost.
  EXPECT_EQ(login_vhost("v:device-2", &unknown, 1, s, &ports, &certs).vhost, "v");
  EXPECT_EQ(login_vhost("device-2", &unknown, 1, s, &ports, &certs).vhost, "/");
}

}  // namespace
}  // namespace warren::mqtt
