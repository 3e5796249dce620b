#include "mqtt/properties.h"

#include "common/utf8.h"

namespace warren::mqtt {

namespace {

enum class Kind : uint8_t { kByte, kU16, kU32, kVarint, kString, kBinary, kPair };

struct Spec {
  Kind kind;
  bool repeatable;
};

std::optional<Spec> spec_of(PropertyId id) {
  using P = PropertyId;
  switch (id) {
    case P::kPayloadFormatIndicator:
    case P::kRequestProblemInformation:
    case P::kRequestResponseInformation:
    case P::kMaximumQos:
    case P::kRetainAvailable:
    case P::kWildcardSubscriptionAvailable:
    case P::kSubscriptionIdentifierAvailable:
    case P::kSharedSubscriptionAvailable:
      return Spec{Kind::kByte, false};
    case P::kServerKeepAlive:
    case P::kReceiveMaximum:
    case P::kTopicAliasMaximum:
    case P::kTopicAlias:
      return Spec{Kind::kU16, false};
    case P::kMessageExpiryInterval:
    case P::kSessionExpiryInterval:
    case P::kWillDelayInterval:
    case P::kMaximumPacketSize:
      return Spec{Kind::kU32, false};
    case P::kSubscriptionIdentifier:
      return Spec{Kind::kVarint, true};
    case P::kContentType:
    case P::kResponseTopic:
    case P::kAssignedClientIdentifier:
    case P::kAuthenticationMethod:
    case P::kResponseInformation:
    case P::kServerReference:
    case P::kReasonString:
      return Spec{Kind::kString, false};
    case P::kCorrelationData:
    case P::kAuthenticationData:
      return Spec{Kind::kBinary, false};
    case P::kUserProperty:
      return Spec{Kind::kPair, true};
  }
  return std::nullopt;
}

// The properties a client may send in each packet (MQTT 5.0 section 2.2.2.2; the Subscription
// Identifier of a PUBLISH is the server's to send [MQTT-3.3.4-6]).
bool allowed(PropertyContext c, PropertyId id) {
  using P = PropertyId;
  if (id == P::kUserProperty) return true;
  switch (c) {
    case PropertyContext::kConnect:
      return id == P::kSessionExpiryInterval || id == P::kAuthenticationMethod ||
             id == P::kAuthenticationData || id == P::kRequestProblemInformation ||
             id == P::kRequestResponseInformation || id == P::kReceiveMaximum ||
             id == P::kTopicAliasMaximum || id == P::kMaximumPacketSize;
    case PropertyContext::kWill:
      return id == P::kWillDelayInterval || id == P::kPayloadFormatIndicator ||
             id == P::kMessageExpiryInterval || id == P::kContentType ||
             id == P::kResponseTopic || id == P::kCorrelationData;
    case PropertyContext::kConnack:
      return id != P::kPayloadFormatIndicator && id != P::kMessageExpiryInterval &&
             id != P::kContentType && id != P::kResponseTopic && id != P::kCorrelationData &&
             id != P::kSubscriptionIdentifier && id != P::kWillDelayInterval &&
             id != P::kRequestProblemInformation && id != P::kRequestResponseInformation &&
             id != P::kTopicAlias && id != P::kSessionExpiryInterval;
    case PropertyContext::kPublish:
      return id == P::kPayloadFormatIndicator || id == P::kMessageExpiryInterval ||
             id == P::kContentType || id == P::kResponseTopic || id == P::kCorrelationData ||
             id == P::kTopicAlias;
    case PropertyContext::kAck:
      return id == P::kReasonString;
    case PropertyContext::kSubscribe:
      return id == P::kSubscriptionIdentifier;
    case PropertyContext::kUnsubscribe:
      return false;
    case PropertyContext::kDisconnect:
      return id == P::kSessionExpiryInterval || id == P::kReasonString ||
             id == P::kServerReference;
  }
  return false;
}

bool take(std::string_view* in, size_t n, std::string_view* v) {
  if (in->size() < n) return false;
  *v = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

uint32_t big_endian(std::string_view b) {
  uint32_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

bool take_string(std::string_view* in, std::string_view* v) {
  std::string_view len;
  return take(in, 2, &len) && take(in, big_endian(len), v);
}

bool valid_string(std::string_view s) {
  return is_rabbit_utf8(s) && s.find('\0') == std::string_view::npos;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

}  // namespace

bool take_varint(std::string_view* in, uint32_t* v) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (i >= in->size()) return false;
    const uint8_t b = static_cast<uint8_t>((*in)[i]);
    value |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = value;
      return true;
    }
  }
  return false;
}

void put_varint(std::string& out, uint32_t v) {
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    if (v != 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v != 0);
}

size_t varint_size(uint32_t v) {
  return v < 128 ? 1 : v < 16'384 ? 2 : v < 2'097'152 ? 3 : 4;
}

std::optional<std::string> decode_properties(std::string_view* in, PropertyContext context,
                                             Properties* out) {
  uint32_t length = 0;
  if (!take_varint(in, &length)) return "property length malformed";
  std::string_view list;
  if (!take(in, length, &list)) return "property list longer than the packet";
  uint64_t seen = 0;  // one bit per identifier below 64
  while (!list.empty()) {
    uint32_t raw_id = 0;
    if (!take_varint(&list, &raw_id) || raw_id > 0x7F) return "property identifier malformed";
    const auto id = static_cast<PropertyId>(raw_id);
    std::optional<Spec> spec = spec_of(id);
    if (!spec) return "unknown property " + std::to_string(raw_id);
    if (!allowed(context, id)) return "property " + std::to_string(raw_id) + " not allowed here";
    if (!spec->repeatable) {
      if ((seen >> raw_id) & 1) return "property " + std::to_string(raw_id) + " given twice";
      seen |= uint64_t{1} << raw_id;
    }
    std::string_view b, s, s2;
    uint32_t n = 0;
    switch (spec->kind) {
      case Kind::kByte:
        if (!take(&list, 1, &b)) return "property truncated";
        n = static_cast<uint8_t>(b[0]);
        break;
      case Kind::kU16:
        if (!take(&list, 2, &b)) return "property truncated";
        n = big_endian(b);
        break;
      case Kind::kU32:
        if (!take(&list, 4, &b)) return "property truncated";
        n = big_endian(b);
        break;
      case Kind::kVarint:
        if (!take_varint(&list, &n)) return "property truncated";
        break;
      case Kind::kString:
        if (!take_string(&list, &s) || !valid_string(s)) return "property string malformed";
        break;
      case Kind::kBinary:
        if (!take_string(&list, &s)) return "property truncated";
        break;
      case Kind::kPair:
        if (!take_string(&list, &s) || !take_string(&list, &s2) || !valid_string(s) ||
            !valid_string(s2))
          return "user property malformed";
        break;
    }
    using P = PropertyId;
    switch (id) {
      case P::kPayloadFormatIndicator:
        if (n > 1) return "payload format indicator not 0 or 1";
        out->payload_format_indicator = static_cast<uint8_t>(n);
        break;
      case P::kMessageExpiryInterval: out->message_expiry_interval = n; break;
      case P::kContentType: out->content_type = s; break;
      case P::kResponseTopic:
        if (s.empty() || s.find_first_of("+#") != std::string_view::npos)
          return "response topic malformed";
        out->response_topic = s;
        break;
      case P::kCorrelationData: out->correlation_data = s; break;
      case P::kSubscriptionIdentifier:
        if (n == 0) return "subscription identifier 0";
        if (context == PropertyContext::kSubscribe && !out->subscription_identifiers.empty())
          return "two subscription identifiers";
        out->subscription_identifiers.push_back(n);
        break;
      case P::kSessionExpiryInterval: out->session_expiry_interval = n; break;
      case P::kAuthenticationMethod: out->authentication_method = s; break;
      case P::kRequestProblemInformation:
        if (n > 1) return "request problem information not 0 or 1";
        out->request_problem_information = static_cast<uint8_t>(n);
        break;
      case P::kWillDelayInterval: out->will_delay_interval = n; break;
      case P::kRequestResponseInformation:
        if (n > 1) return "request response information not 0 or 1";
        out->request_response_information = static_cast<uint8_t>(n);
        break;
      case P::kReasonString: out->reason_string = s; break;
      case P::kReceiveMaximum:
        if (n == 0) return "receive maximum 0";
        out->receive_maximum = static_cast<uint16_t>(n);
        break;
      case P::kTopicAliasMaximum: out->topic_alias_maximum = static_cast<uint16_t>(n); break;
      case P::kTopicAlias: out->topic_alias = static_cast<uint16_t>(n); break;
      case P::kMaximumPacketSize:
        if (n == 0) return "maximum packet size 0";
        out->maximum_packet_size = n;
        break;
      case P::kUserProperty: out->user_properties.emplace_back(s, s2); break;
      default:
        break;  // the server's own properties, accepted in a CONNACK (tests decode them)
    }
  }
  return std::nullopt;
}

PropertyWriter& PropertyWriter::byte(PropertyId id, uint8_t v) {
  bytes_.push_back(static_cast<char>(id));
  bytes_.push_back(static_cast<char>(v));
  return *this;
}

PropertyWriter& PropertyWriter::u16(PropertyId id, uint16_t v) {
  bytes_.push_back(static_cast<char>(id));
  put_u16(bytes_, v);
  return *this;
}

PropertyWriter& PropertyWriter::u32(PropertyId id, uint32_t v) {
  bytes_.push_back(static_cast<char>(id));
  put_u16(bytes_, static_cast<uint16_t>(v >> 16));
  put_u16(bytes_, static_cast<uint16_t>(v & 0xFFFF));
  return *this;
}

PropertyWriter& PropertyWriter::varint(PropertyId id, uint32_t v) {
  bytes_.push_back(static_cast<char>(id));
  put_varint(bytes_, v);
  return *this;
}

PropertyWriter& PropertyWriter::string(PropertyId id, std::string_view v) {
  bytes_.push_back(static_cast<char>(id));
  put_u16(bytes_, static_cast<uint16_t>(v.size()));
  bytes_.append(v);
  return *this;
}

PropertyWriter& PropertyWriter::user_property(std::string_view name, std::string_view value) {
  bytes_.push_back(static_cast<char>(PropertyId::kUserProperty));
  put_u16(bytes_, static_cast<uint16_t>(name.size()));
  bytes_.append(name);
  put_u16(bytes_, static_cast<uint16_t>(value.size()));
  bytes_.append(value);
  return *this;
}

}  // namespace warren::mqtt
