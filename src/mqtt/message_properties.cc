#include "mqtt/message_properties.h"

#include <algorithm>
#include <array>
#include <vector>

#include <fmt/format.h>

#include "common/basic_properties.h"
#include "common/field_table.h"
#include "common/utf8.h"
#include "mqtt/topic.h"

namespace warren::mqtt {

namespace {

constexpr std::string_view kQosHeader = "x-mqtt-publish-qos";
constexpr std::string_view kDupHeader = "x-mqtt-dup";
constexpr std::string_view kPayloadFormatHeader = "x-mqtt-payload-format-indicator";
constexpr std::string_view kReplyToTopicHeader = "x-reply-to-topic";
constexpr std::string_view kCorrelationIdHeader = "x-correlation-id";
// The longest expiration the broker accepts (ten years, as RabbitMQ's AMQP 0-9-1).
constexpr int64_t kMaxExpirationMs = 315'360'000'000;
// The longest string an MQTT property holds.
constexpr size_t kMaxPropertyString = 65'535;

bool is_short_string(std::string_view s) { return s.size() <= 255 && is_rabbit_utf8(s); }

bool is_mqtt_string(std::string_view s) {
  return s.size() <= kMaxPropertyString && is_rabbit_utf8(s) &&
         s.find('\0') == std::string_view::npos;
}

// An AMQP header value as an MQTT User Property value (rabbit mc_mqtt:amqpl_header_to_user_
// property): strings as they are, numbers and booleans as text; tables, arrays and byte arrays
// have no text form.
std::optional<std::string> header_as_text(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> std::optional<std::string> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!is_mqtt_string(x)) return std::nullopt;
          return x;
        } else if constexpr (std::is_same_v<T, bool>) {
          return std::string(x ? "true" : "false");
        } else if constexpr (std::is_integral_v<T>) {
          return fmt::format("{}", static_cast<int64_t>(x));
        } else if constexpr (std::is_floating_point_v<T>) {
          return fmt::format("{}", x);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          return fmt::format("{}", x.seconds);
        } else if constexpr (std::is_same_v<T, Void>) {
          return std::string();
        } else {
          return std::nullopt;
        }
      },
      v.v);
}

// Headers that are not User Properties: the ones this file maps to MQTT attributes, and the
// broker's dead-lettering record (a delayed will arrives dead-lettered).
bool is_internal_header(std::string_view key) {
  return key == kQosHeader || key == kDupHeader || key == kPayloadFormatHeader ||
         key == kReplyToTopicHeader || key == kCorrelationIdHeader ||
         key.starts_with("x-first-death-") || key.starts_with("x-last-death-");
}

}  // namespace

std::string_view publish_properties(uint8_t qos, bool dup) {
  static const std::array<std::string, 4> encoded = [] {
    std::array<std::string, 4> out;
    for (int i = 0; i < 4; ++i) {
      const uint8_t q = i >> 1;
      FieldTable headers;
      headers.set(std::string(kQosHeader), FieldValue(static_cast<int8_t>(q)));
      headers.set(std::string(kDupHeader), FieldValue((i & 1) != 0));
      const std::string table = encode_table_body(headers);
      BasicProperties p;
      p.flags = BasicProperties::kFlagHeaders | BasicProperties::kFlagDeliveryMode;
      p.headers = table;
      p.delivery_mode = q == 0 ? 1 : 2;
      Writer w(out[i]);
      p.encode(w);
    }
    return out;
  }();
  return encoded[(qos << 1) | (dup ? 1 : 0)];
}

EncodedPublish publish_properties(uint8_t qos, bool dup, const Properties& in,
                                  std::optional<int64_t> expiration_ms) {
  EncodedPublish out;
  FieldTable headers;
  headers.set(std::string(kQosHeader), FieldValue(static_cast<int8_t>(qos)));
  headers.set(std::string(kDupHeader), FieldValue(dup));
  // User Properties may repeat a name; an AMQP table may not: the first one is kept.
  for (const auto& [name, value] : in.user_properties)
    if (name.size() <= 255 && headers.find(name) == nullptr)
      headers.set(std::string(name), FieldValue(std::string(value)));
  if (in.payload_format_indicator)
    headers.set(std::string(kPayloadFormatHeader),
                FieldValue(static_cast<uint8_t>(*in.payload_format_indicator)));
  if (in.response_topic)
    headers.set(std::string(kReplyToTopicHeader), FieldValue(topic_to_routing_key(*in.response_topic)));
  BasicProperties p;
  p.flags = BasicProperties::kFlagHeaders | BasicProperties::kFlagDeliveryMode;
  p.delivery_mode = qos == 0 ? 1 : 2;
  if (in.correlation_data) {
    if (is_short_string(*in.correlation_data)) {
      p.flags |= BasicProperties::kFlagCorrelationId;
      p.correlation_id = *in.correlation_data;
    } else {
      headers.set(std::string(kCorrelationIdHeader), FieldValue(std::string(*in.correlation_data)));
    }
  }
  if (in.content_type && in.content_type->size() <= 255) {
    p.flags |= BasicProperties::kFlagContentType;
    p.content_type = *in.content_type;
  }
  std::string expiration;
  if (expiration_ms || in.message_expiry_interval) {
    out.expiration_ms = std::min<int64_t>(
        expiration_ms ? *expiration_ms : int64_t{*in.message_expiry_interval} * 1000,
        kMaxExpirationMs);
    expiration = std::to_string(out.expiration_ms);
    p.flags |= BasicProperties::kFlagExpiration;
    p.expiration = expiration;
  }
  // RabbitMQ sorts the headers of a converted message by name.
  std::stable_sort(headers.entries.begin(), headers.entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  const std::string table = encode_table_body(headers);
  p.headers = table;
  Writer w(out.raw);
  p.encode(w);
  return out;
}

std::string retained_properties(const Properties& p) {
  PropertyWriter w;
  if (p.payload_format_indicator)
    w.byte(PropertyId::kPayloadFormatIndicator, *p.payload_format_indicator);
  if (p.content_type) w.string(PropertyId::kContentType, *p.content_type);
  if (p.response_topic) w.string(PropertyId::kResponseTopic, *p.response_topic);
  if (p.correlation_data) w.string(PropertyId::kCorrelationData, *p.correlation_data);
  for (const auto& [name, value] : p.user_properties) w.user_property(name, value);
  return w.bytes();
}

PublishedAs published_as(std::string_view raw_properties) {
  PublishedAs out;
  // Most deliveries of AMQP publishes have no such header: skip the decoding for them.
  if (raw_properties.find(kQosHeader) == std::string_view::npos) return out;
  BasicProperties p;
  Reader r(raw_properties);
  if (!p.decode(r) || !p.has_headers()) return out;
  auto headers = decode_table(p.headers);
  if (!headers) return out;
  if (const FieldValue* q = headers->find(kQosHeader))
    if (auto v = q->as_int()) out.qos = static_cast<uint8_t>(std::clamp<int64_t>(*v, 0, 2));
  if (const FieldValue* d = headers->find(kDupHeader)) out.dup = d->as_bool().value_or(false);
  return out;
}

void delivery_properties(std::string_view raw_properties, int64_t expires_in_ms,
                         PropertyWriter& w) {
  // A 3.1.1 publish has nothing to say beyond its QoS.
  for (uint8_t q = 0; q < 2; ++q)
    for (bool dup : {false, true})
      if (raw_properties == publish_properties(q, dup)) return;
  BasicProperties p;
  Reader r(raw_properties);
  if (!p.decode(r)) return;
  std::optional<FieldTable> headers;
  if (p.has_headers()) headers = decode_table(p.headers);
  auto header = [&](std::string_view key) -> const FieldValue* {
    return headers ? headers->find(key) : nullptr;
  };
  if (const FieldValue* f = header(kPayloadFormatHeader))
    if (auto v = f->as_int(); v && (*v == 0 || *v == 1))
      w.byte(PropertyId::kPayloadFormatIndicator, static_cast<uint8_t>(*v));
  if (p.has_expiration() && expires_in_ms >= 0)
    w.u32(PropertyId::kMessageExpiryInterval,
          static_cast<uint32_t>(std::min<int64_t>(expires_in_ms / 1000, UINT32_MAX)));
  if (p.has_content_type() && is_mqtt_string(p.content_type))
    w.string(PropertyId::kContentType, p.content_type);
  if (const FieldValue* t = header(kReplyToTopicHeader))
    if (auto key = t->as_string(); key && !key->empty()) {
      const std::string topic = routing_key_to_topic(*key);
      if (is_mqtt_string(topic) && topic.find_first_of("+#") == std::string::npos)
        w.string(PropertyId::kResponseTopic, topic);
    }
  if (p.has_correlation_id()) {
    w.string(PropertyId::kCorrelationData, p.correlation_id);
  } else if (const FieldValue* c = header(kCorrelationIdHeader)) {
    if (auto data = c->as_string(); data && data->size() <= kMaxPropertyString)
      w.string(PropertyId::kCorrelationData, *data);
  }
  if (headers)
    for (const auto& [key, value] : headers->entries) {
      if (is_internal_header(key) || !is_mqtt_string(key)) continue;
      if (std::optional<std::string> text = header_as_text(value))
        w.user_property(key, *text);
    }
}

}  // namespace warren::mqtt
