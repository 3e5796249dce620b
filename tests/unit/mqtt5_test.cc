// MQTT 5.0: properties (decoding rules, the writer), the 5.0 forms of CONNECT, PUBLISH,
// SUBSCRIBE, the acknowledgements and DISCONNECT, and how 5.0 message properties map onto the
// broker's AMQP properties and back (mqtt/message_properties.h).
#include <gtest/gtest.h>

#include <string>

#include "common/basic_properties.h"
#include "common/field_table.h"
#include "mqtt/message_properties.h"
#include "mqtt/packet.h"

namespace warren::mqtt {
namespace {

std::string str16(std::string_view s) {
  std::string out;
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xFF));
  out.append(s);
  return out;
}

// A property list with its length prefix.
std::string with_length(const std::string& list) {
  std::string out;
  put_varint(out, static_cast<uint32_t>(list.size()));
  return out + list;
}

FixedHeader header(PacketType t, uint8_t flags, const std::string& body) {
  return {t, flags, static_cast<uint32_t>(body.size()), 2};
}

TEST(Mqtt5Properties, DecodeWhatTheWriterWrote) {
  PropertyWriter w;
  w.byte(PropertyId::kPayloadFormatIndicator, 1)
      .u32(PropertyId::kMessageExpiryInterval, 90)
      .string(PropertyId::kContentType, "text/plain")
      .string(PropertyId::kResponseTopic, "r/t")
      .string(PropertyId::kCorrelationData, std::string("\x00\xff", 2))
      .u16(PropertyId::kTopicAlias, 7)
      .user_property("k", "v1")
      .user_property("k", "v2");
  std::string encoded = with_length(w.bytes()) + "payload";
  std::string_view in = encoded;
  Properties p;
  ASSERT_EQ(decode_properties(&in, PropertyContext::kPublish, &p), std::nullopt);
  EXPECT_EQ(in, "payload");
  EXPECT_EQ(p.payload_format_indicator, 1);
  EXPECT_EQ(p.message_expiry_interval, 90u);
  EXPECT_EQ(p.content_type, "text/plain");
  EXPECT_EQ(p.response_topic, "r/t");
  EXPECT_EQ(p.correlation_data, std::string_view("\x00\xff", 2));
  EXPECT_EQ(p.topic_alias, 7);
  ASSERT_EQ(p.user_properties.size(), 2u);  // repeatable, in order
  EXPECT_EQ(p.user_properties[1].second, "v2");
}

TEST(Mqtt5Properties, MalformedListsAreErrors) {
  auto error = [](const std::string& list, PropertyContext c) {
    std::string encoded = with_length(list);
    std::string_view in = encoded;
    Properties p;
    return decode_properties(&in, c, &p).has_value();
  };
  PropertyWriter twice;
  twice.u32(PropertyId::kMessageExpiryInterval, 1).u32(PropertyId::kMessageExpiryInterval, 2);
  EXPECT_TRUE(error(twice.bytes(), PropertyContext::kPublish));
  EXPECT_TRUE(error("\x7f\x00", PropertyContext::kPublish));  // unknown identifier
  PropertyWriter sub_id;  // a client may not send a Subscription Identifier in PUBLISH
  sub_id.varint(PropertyId::kSubscriptionIdentifier, 3);
  EXPECT_TRUE(error(sub_id.bytes(), PropertyContext::kPublish));
  EXPECT_FALSE(error(sub_id.bytes(), PropertyContext::kSubscribe));
  PropertyWriter zero_id;
  zero_id.varint(PropertyId::kSubscriptionIdentifier, 0);
  EXPECT_TRUE(error(zero_id.bytes(), PropertyContext::kSubscribe));
  PropertyWriter bad_format;
  bad_format.byte(PropertyId::kPayloadFormatIndicator, 2);
  EXPECT_TRUE(error(bad_format.bytes(), PropertyContext::kPublish));
  PropertyWriter wildcard_reply;
  wildcard_reply.string(PropertyId::kResponseTopic, "a/+");
  EXPECT_TRUE(error(wildcard_reply.bytes(), PropertyContext::kPublish));
  PropertyWriter receive_zero;
  receive_zero.u16(PropertyId::kReceiveMaximum, 0);
  EXPECT_TRUE(error(receive_zero.bytes(), PropertyContext::kConnect));
  EXPECT_TRUE(error("\x02\x00\x00", PropertyContext::kPublish));  // truncated u32
  std::string longer = "\x05\x01";  // the list claims 5 bytes, 1 follows
  std::string_view in = longer;
  Properties p;
  EXPECT_TRUE(decode_properties(&in, PropertyContext::kPublish, &p).has_value());
}

TEST(Mqtt5Packets, ConnectWithPropertiesAndWill) {
  PropertyWriter props;
  props.u32(PropertyId::kSessionExpiryInterval, 300).u16(PropertyId::kReceiveMaximum, 5);
  PropertyWriter will;
  will.u32(PropertyId::kWillDelayInterval, 2).string(PropertyId::kContentType, "t");
  const uint8_t flags = 0x02 | 0x04 | 0x08 | 0x80 | 0x40;  // clean, will QoS 1, user, password
  std::string body = str16("MQTT") + "\x05" + static_cast<char>(flags) + std::string("\x00\x3c", 2) +
                     with_length(props.bytes()) + str16("id") + with_length(will.bytes()) +
                     str16("w/t") + str16("bye") + str16("u") + str16("p");
  auto c = decode_connect(header(PacketType::kConnect, 0, body), body);
  ASSERT_TRUE(c) << c.error().text;
  EXPECT_EQ(c->level, kLevel5);
  EXPECT_EQ(c->properties.session_expiry_interval, 300u);
  EXPECT_EQ(c->properties.receive_maximum, 5);
  ASSERT_TRUE(c->will);
  EXPECT_EQ(c->will->topic, "w/t");
  EXPECT_EQ(c->will->qos, 1);
  std::string_view raw = c->will->properties;
  Properties wp;
  ASSERT_EQ(decode_properties(&raw, PropertyContext::kWill, &wp), std::nullopt);
  EXPECT_EQ(wp.will_delay_interval, 2u);
  EXPECT_EQ(c->username, "u");
  // A CONNECT property in the will's list is malformed.
  std::string bad = str16("MQTT") + "\x05" + static_cast<char>(0x02 | 0x04) +
                    std::string("\x00\x3c", 2) + with_length("") + str16("id") +
                    with_length(props.bytes()) + str16("w") + str16("m");
  EXPECT_FALSE(decode_connect(header(PacketType::kConnect, 0, bad), bad));
}

TEST(Mqtt5Packets, PublishSubscribeAcksAndDisconnect) {
  // PUBLISH with an empty topic and a Topic Alias.
  PropertyWriter alias;
  alias.u16(PropertyId::kTopicAlias, 1);
  std::string body = str16("") + std::string("\x00\x05", 2) + with_length(alias.bytes()) + "x";
  auto p = decode_publish(header(PacketType::kPublish, 0x02, body), body, true);
  ASSERT_TRUE(p) << p.error().text;
  EXPECT_EQ(p->topic, "");
  EXPECT_EQ(p->properties.topic_alias, 1);
  EXPECT_EQ(p->payload, "x");
  std::string no_alias = str16("") + with_length("") + "x";
  EXPECT_FALSE(decode_publish(header(PacketType::kPublish, 0, no_alias), no_alias, true));
  EXPECT_FALSE(decode_publish(header(PacketType::kPublish, 0, no_alias), no_alias, false));

  // SUBSCRIBE options: QoS 1, No Local, Retain As Published, Retain Handling 2.
  PropertyWriter id;
  id.varint(PropertyId::kSubscriptionIdentifier, 300);
  std::string sub = std::string("\x00\x01", 2) + with_length(id.bytes()) + str16("a/+") +
                    static_cast<char>(0x01 | 0x04 | 0x08 | 0x20);
  auto s = decode_subscribe(header(PacketType::kSubscribe, 0x02, sub), sub, true);
  ASSERT_TRUE(s) << s.error().text;
  ASSERT_EQ(s->topics.size(), 1u);
  EXPECT_EQ(s->topics[0].qos, 1);
  EXPECT_TRUE(s->topics[0].no_local);
  EXPECT_TRUE(s->topics[0].retain_as_published);
  EXPECT_EQ(s->topics[0].retain_handling, 2);
  EXPECT_EQ(s->properties.subscription_identifiers, std::vector<uint32_t>{300});
  std::string reserved = std::string("\x00\x01", 2) + with_length("") + str16("a") + "\x40";
  EXPECT_FALSE(decode_subscribe(header(PacketType::kSubscribe, 0x02, reserved), reserved, true));
  // The same options byte is malformed in 3.1.1, where only the QoS bits exist.
  std::string v3 = std::string("\x00\x01", 2) + str16("a") + "\x05";
  EXPECT_FALSE(decode_subscribe(header(PacketType::kSubscribe, 0x02, v3), v3, false));

  // PUBACK: 2 bytes (success), 3 (a reason code), 4+ (properties).
  auto a2 = decode_ack(header(PacketType::kPuback, 0, "\x00\x09"), std::string("\x00\x09", 2), true);
  ASSERT_TRUE(a2);
  EXPECT_EQ(a2->reason, 0);
  std::string a3 = std::string("\x00\x09\x10", 3);
  EXPECT_EQ(decode_ack(header(PacketType::kPuback, 0, a3), a3, true)->reason, 0x10);
  std::string a4 = std::string("\x00\x09\x80\x00", 4);
  EXPECT_TRUE(decode_ack(header(PacketType::kPuback, 0, a4), a4, true));
  EXPECT_FALSE(decode_ack(header(PacketType::kPuback, 0, a3), a3, false));

  // DISCONNECT with a reason and a Session Expiry Interval.
  PropertyWriter sei;
  sei.u32(PropertyId::kSessionExpiryInterval, 0);
  std::string d = "\x04" + with_length(sei.bytes());
  auto disc = decode_disconnect(header(PacketType::kDisconnect, 0, d), d, true);
  ASSERT_TRUE(disc);
  EXPECT_EQ(disc->reason, 0x04);
  EXPECT_EQ(disc->properties.session_expiry_interval, 0u);
  EXPECT_TRUE(decode_disconnect(header(PacketType::kDisconnect, 0, ""), "", true));
  EXPECT_FALSE(decode_disconnect(header(PacketType::kDisconnect, 0, d), d, false));
}

TEST(Mqtt5Packets, EncodersWriteWhatTheSpecSays) {
  std::string out;
  write_puback5(out, 9, 0);
  EXPECT_EQ(out, std::string("\x40\x02\x00\x09", 4));
  out.clear();
  write_puback5(out, 9, 0x10);
  EXPECT_EQ(out, std::string("\x40\x03\x00\x09\x10", 5));
  out.clear();
  write_suback5(out, 1, {0x00, 0x9E});
  EXPECT_EQ(out, std::string("\x90\x05\x00\x01\x00\x00\x9e", 7));
  out.clear();
  write_disconnect5(out, 0x8E);
  EXPECT_EQ(out, std::string("\xe0\x02\x8e\x00", 4));
  out.clear();
  PropertyWriter w;
  w.u16(PropertyId::kTopicAlias, 1);
  write_publish5(out, "t", "p", 1, 5, false, true, w.bytes());
  EXPECT_EQ(out.size(), publish5_size("t", 1, 1, w.bytes()));
  FixedHeader h;
  ASSERT_EQ(parse_fixed_header(out, &h), HeaderStatus::kComplete);
  auto p = decode_publish(h, std::string_view(out).substr(h.header_size), true);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->retain);
  EXPECT_EQ(p->packet_id, 5);
  EXPECT_EQ(p->properties.topic_alias, 1);
  EXPECT_EQ(p->payload, "p");
}

TEST(Mqtt5MessageProperties, PublishPropertiesAsRabbitMQ313MapsThem) {
  Properties in;
  in.content_type = "application/json";
  in.correlation_data = "req-1";
  in.response_topic = "reply/to/me";
  in.message_expiry_interval = 60;
  in.user_properties = {{"b", "2"}, {"a", "1"}, {"a", "dropped"}};
  EncodedPublish e = publish_properties(1, false, in);
  EXPECT_EQ(e.expiration_ms, 60000);
  BasicProperties p;
  Reader r(e.raw);
  ASSERT_TRUE(p.decode(r));
  EXPECT_EQ(p.content_type, "application/json");
  EXPECT_EQ(p.correlation_id, "req-1");
  EXPECT_EQ(p.expiration, "60000");
  EXPECT_EQ(p.delivery_mode, 2);
  auto headers = decode_table(p.headers);
  ASSERT_TRUE(headers);
  EXPECT_EQ(headers->find("x-reply-to-topic")->as_string(), "reply.to.me");
  EXPECT_EQ(headers->find("a")->as_string(), "1");  // the first of a repeated name
  EXPECT_EQ(headers->find("x-mqtt-publish-qos")->as_int(), 1);
  // Sorted by name, as RabbitMQ writes converted headers.
  for (size_t i = 1; i < headers->entries.size(); ++i)
    EXPECT_LT(headers->entries[i - 1].first, headers->entries[i].first);

  // Correlation data that is not a short string goes into a header.
  Properties binary;
  binary.correlation_data = std::string_view("\xff\xfe", 2);
  BasicProperties b;
  EncodedPublish eb = publish_properties(0, false, binary);
  Reader rb(eb.raw);
  ASSERT_TRUE(b.decode(rb));
  EXPECT_FALSE(b.has_correlation_id());
  EXPECT_EQ(decode_table(b.headers)->find("x-correlation-id")->as_string(),
            std::string_view("\xff\xfe", 2));
}

TEST(Mqtt5MessageProperties, DeliveryPropertiesRoundTripAndAmqpHeaders) {
  Properties in;
  in.payload_format_indicator = 1;
  in.content_type = "text/plain";
  in.correlation_data = std::string_view("\x01\x02", 2);
  in.response_topic = "r/1";
  in.message_expiry_interval = 30;
  in.user_properties = {{"k", "v"}};
  EncodedPublish e = publish_properties(1, false, in);
  PropertyWriter w;
  delivery_properties(e.raw, 12'500, w);
  std::string encoded = with_length(w.bytes());
  std::string_view view = encoded;
  Properties out;
  ASSERT_EQ(decode_properties(&view, PropertyContext::kPublish, &out), std::nullopt);
  EXPECT_EQ(out.payload_format_indicator, 1);
  EXPECT_EQ(out.content_type, "text/plain");
  EXPECT_EQ(out.correlation_data, std::string_view("\x01\x02", 2));
  EXPECT_EQ(out.response_topic, "r/1");
  EXPECT_EQ(out.message_expiry_interval, 12u);  // what is left, in whole seconds
  ASSERT_EQ(out.user_properties.size(), 1u);  // the mapping headers are not user properties
  EXPECT_EQ(out.user_properties[0], (UserProperty{"k", "v"}));

  // A 3.1.1 publish has no 5.0 properties.
  PropertyWriter none;
  delivery_properties(publish_properties(1, true), -1, none);
  EXPECT_TRUE(none.empty());

  // An AMQP publish: headers become user properties, as text where they have one.
  FieldTable h;
  h.set("s", FieldValue(std::string("text")));
  h.set("n", FieldValue(int32_t{5}));
  h.set("t", FieldValue(true));
  h.set("nested", FieldValue(FieldTable{}));
  const std::string table = encode_table_body(h);
  BasicProperties amqp;
  amqp.flags = BasicProperties::kFlagHeaders;
  amqp.headers = table;
  std::string raw;
  Writer wr(raw);
  amqp.encode(wr);
  PropertyWriter from_amqp;
  delivery_properties(raw, -1, from_amqp);
  std::string list = with_length(from_amqp.bytes());
  std::string_view lv = list;
  Properties up;
  ASSERT_EQ(decode_properties(&lv, PropertyContext::kPublish, &up), std::nullopt);
  ASSERT_EQ(up.user_properties.size(), 3u);
  EXPECT_EQ(up.user_properties[1], (UserProperty{"n", "5"}));
  EXPECT_EQ(up.user_properties[2], (UserProperty{"t", "true"}));
}

}  // namespace
}  // namespace warren::mqtt
