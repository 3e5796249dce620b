// The MQTT codec (mqtt/packet.h) and topic mapping (mqtt/topic.h): remaining lengths at their
// boundaries, CONNECT flag rules, malformed packets as errors, RabbitMQ's topic <-> routing key
// mapping and MQTT filter matching.
#include <gtest/gtest.h>

#include <string>

#include "mqtt/packet.h"
#include "mqtt/topic.h"

namespace warren::mqtt {
namespace {

std::string str16(std::string_view s) {
  std::string out;
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xFF));
  out.append(s);
  return out;
}

TEST(MqttPacket, RemainingLengthRoundTripsAtEveryBoundary) {
  for (uint32_t n : {0u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u, kMaxRemainingLength}) {
    std::string out;
    write_fixed_header(out, PacketType::kPublish, 0x3, n);
    FixedHeader h;
    ASSERT_EQ(parse_fixed_header(out, &h), HeaderStatus::kComplete) << n;
    EXPECT_EQ(h.remaining, n);
    EXPECT_EQ(h.header_size, out.size());
    EXPECT_EQ(h.type, PacketType::kPublish);
    EXPECT_EQ(h.flags, 0x3);
    EXPECT_EQ(parse_fixed_header(std::string_view(out).substr(0, out.size() - 1), &h),
              HeaderStatus::kNeedMore);
  }
  FixedHeader h;
  EXPECT_EQ(parse_fixed_header(std::string("\x30\xff\xff\xff\xff\x01", 6), &h),
            HeaderStatus::kMalformed);
  EXPECT_EQ(parse_fixed_header(std::string("\x00\x00", 2), &h), HeaderStatus::kMalformed);
  EXPECT_EQ(parse_fixed_header(std::string("\xf0\x00", 2), &h), HeaderStatus::kMalformed);
}

TEST(MqttPacket, ConnectWithWillAndCredentials) {
  std::string body = str16("MQTT") + "\x04" + std::string(1, char(0xC0 | 0x20 | 0x08 | 0x04)) +
                     std::string("\x00\x3c", 2) + str16("client-1") + str16("will/topic") +
                     str16(std::string("bye\0", 4)) + str16("vh:user") + str16("secret");
  FixedHeader h{PacketType::kConnect, 0, static_cast<uint32_t>(body.size()), 2};
  auto c = decode_connect(h, body);
  ASSERT_TRUE(c) << c.error().text;
  EXPECT_EQ(c->level, kLevel311);
  EXPECT_FALSE(c->clean_session);
  EXPECT_EQ(c->keep_alive, 60);
  EXPECT_EQ(c->client_id, "client-1");
  ASSERT_TRUE(c->will);
  EXPECT_EQ(c->will->topic, "will/topic");
  EXPECT_EQ(c->will->payload, std::string("bye\0", 4));
  EXPECT_EQ(c->will->qos, 1);
  EXPECT_TRUE(c->will->retain);
  EXPECT_EQ(*c->username, "vh:user");
  EXPECT_EQ(*c->password, "secret");
}

TEST(MqttPacket, ConnectFlagViolationsAreErrors) {
  auto connect = [](uint8_t flags, std::string rest = str16("id")) {
    std::string body = str16("MQTT") + "\x04" + std::string(1, char(flags)) +
                       std::string("\x00\x00", 2) + rest;
    FixedHeader h{PacketType::kConnect, 0, static_cast<uint32_t>(body.size()), 2};
    return decode_connect(h, body);
  };
  EXPECT_TRUE(connect(0x02));
  EXPECT_FALSE(connect(0x03));  // reserved bit
  EXPECT_FALSE(connect(0x02 | 0x18, str16("id") + str16("t") + str16("m")));  // will QoS 3
  EXPECT_FALSE(connect(0x02 | 0x20));  // will retain without a will
  EXPECT_FALSE(connect(0x02, str16("id") + "x"));  // trailing bytes
  EXPECT_FALSE(connect(0x02, str16(std::string("a\0b", 3))));  // NUL in a string
  EXPECT_FALSE(connect(0x02, str16("\xff")));  // not UTF-8
  // An unknown level is not an error here: the caller answers CONNACK 1.
  std::string body6 = str16("MQTT") + "\x06" + std::string("\x02\x00\x00", 3);
  auto v6 = decode_connect({PacketType::kConnect, 0, static_cast<uint32_t>(body6.size()), 2}, body6);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->level, 6);
}

TEST(MqttPacket, PublishSubscribeAndAcks) {
  std::string body = str16("a/b") + std::string("\x00\x07", 2) + "payload";
  auto p = decode_publish({PacketType::kPublish, 0x0B, static_cast<uint32_t>(body.size()), 2}, body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->topic, "a/b");
  EXPECT_EQ(p->packet_id, 7);
  EXPECT_EQ(p->qos, 1);
  EXPECT_TRUE(p->dup);
  EXPECT_TRUE(p->retain);
  EXPECT_EQ(p->payload, "payload");
  EXPECT_FALSE(decode_publish({PacketType::kPublish, 0x06, 5, 2}, str16("a/b")));  // QoS 3
  EXPECT_FALSE(decode_publish({PacketType::kPublish, 0, 5, 2}, str16("a/+")));  // wildcard
  std::string no_id = str16("a") + std::string("\x00\x00", 2);
  EXPECT_FALSE(decode_publish({PacketType::kPublish, 0x02, 5, 2}, no_id));  // packet id 0

  std::string sub = std::string("\x00\x05", 2) + str16("a/#") + "\x01" + str16("b/+") + "\x02";
  auto s = decode_subscribe({PacketType::kSubscribe, 0x02, static_cast<uint32_t>(sub.size()), 2}, sub);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->packet_id, 5);
  ASSERT_EQ(s->topics.size(), 2u);
  EXPECT_EQ(s->topics[1].filter, "b/+");
  EXPECT_EQ(s->topics[1].qos, 2);
  EXPECT_FALSE(decode_subscribe({PacketType::kSubscribe, 0x00, 0, 2}, sub));  // flags must be 2
  EXPECT_FALSE(decode_subscribe({PacketType::kSubscribe, 0x02, 2, 2}, std::string("\x00\x05", 2)));
  EXPECT_FALSE(decode_subscribe({PacketType::kSubscribe, 0x02, 0, 2},
                                std::string("\x00\x05", 2) + str16("a") + "\x03"));

  EXPECT_EQ(decode_ack({PacketType::kPuback, 0, 2, 2}, std::string("\x01\x02", 2))->packet_id, 0x102);
  EXPECT_FALSE(decode_ack({PacketType::kPuback, 0, 3, 2}, std::string("\x01\x02\x03", 3)));
  EXPECT_FALSE(decode_ack({PacketType::kPubrel, 0, 2, 2}, std::string("\x01\x02", 2)));
  EXPECT_TRUE(decode_ack({PacketType::kPubrel, 2, 2, 2}, std::string("\x01\x02", 2)));

  std::string out;
  write_publish(out, "t", "x", 1, 0x0A0B, true, false);
  EXPECT_EQ(out, std::string("\x3a\x06\x00\x01t\x0a\x0bx", 8));
  out.clear();
  write_connack(out, true, ConnackCode::kNotAuthorized);
  EXPECT_EQ(out, std::string("\x20\x02\x01\x05", 4));
}

TEST(MqttTopic, RabbitmqMappingAndFilterMatching) {
  EXPECT_EQ(topic_to_routing_key("a/+/c/#"), "a.*.c.#");
  EXPECT_EQ(routing_key_to_topic("a.*.c.#"), "a/+/c/#");
  EXPECT_TRUE(valid_topic_filter("#"));
  EXPECT_TRUE(valid_topic_filter("a/+/b/#"));
  EXPECT_TRUE(valid_topic_filter("+"));
  EXPECT_FALSE(valid_topic_filter("a/#/b"));
  EXPECT_FALSE(valid_topic_filter("a/b#"));
  EXPECT_FALSE(valid_topic_filter("a+/b"));
  EXPECT_FALSE(valid_topic_filter(""));
  struct Case {
    const char* filter;
    const char* topic;
    bool match;
  };
  for (const Case& c : {Case{"a/b", "a/b", true}, Case{"a/b", "a/c", false},
                        Case{"a/+", "a/b", true}, Case{"a/+", "a/b/c", false},
                        Case{"a/+", "a", false}, Case{"a/#", "a", true},
                        Case{"a/#", "a/b/c", true}, Case{"#", "a/b", true},
                        Case{"+/+", "/x", true}, Case{"+", "", true},
                        Case{"#", "$SYS/x", false}, Case{"+/x", "$SYS/x", false},
                        Case{"$SYS/#", "$SYS/x", true}, Case{"a/+/c", "a//c", true},
                        Case{"a", "a/b", false}, Case{"a/b/c", "a/b", false}})
    EXPECT_EQ(topic_matches(c.filter, c.topic), c.match) << c.filter << " " << c.topic;
}

}  // namespace
}  // namespace warren::mqtt
