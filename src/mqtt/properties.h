// MQTT 5.0 properties (OASIS MQTT 5.0 section 2.2.2): the identifier/value list that follows the
// variable header of most v5 packets. Decoded values are views into the packet's bytes, valid
// while the packet is handled; a packet is malformed when a property is unknown, not allowed in
// that packet, given twice (all but User Property and Subscription Identifier), or has a bad
// value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::mqtt {

// Property identifiers.
enum class PropertyId : uint8_t {
  kPayloadFormatIndicator = 0x01,
  kMessageExpiryInterval = 0x02,
  kContentType = 0x03,
  kResponseTopic = 0x08,
  kCorrelationData = 0x09,
  kSubscriptionIdentifier = 0x0B,
  kSessionExpiryInterval = 0x11,
  kAssignedClientIdentifier = 0x12,
  kServerKeepAlive = 0x13,
  kAuthenticationMethod = 0x15,
  kAuthenticationData = 0x16,
  kRequestProblemInformation = 0x17,
  kWillDelayInterval = 0x18,
  kRequestResponseInformation = 0x19,
  kResponseInformation = 0x1A,
  kServerReference = 0x1C,
  kReasonString = 0x1F,
  kReceiveMaximum = 0x21,
  kTopicAliasMaximum = 0x22,
  kTopicAlias = 0x23,
  kMaximumQos = 0x24,
  kRetainAvailable = 0x25,
  kUserProperty = 0x26,
  kMaximumPacketSize = 0x27,
  kWildcardSubscriptionAvailable = 0x28,
  kSubscriptionIdentifierAvailable = 0x29,
  kSharedSubscriptionAvailable = 0x2A,
};

// Which properties a packet may carry (section 2.2.2.2).
enum class PropertyContext : uint8_t {
  kConnect,
  kWill,
  kConnack,
  kPublish,
  kAck,  // PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
  kSubscribe,
  kUnsubscribe,
  kDisconnect,
};

using UserProperty = std::pair<std::string_view, std::string_view>;

struct Properties {
  std::optional<uint8_t> payload_format_indicator;
  std::optional<uint32_t> message_expiry_interval;
  std::optional<std::string_view> content_type;
  std::optional<std::string_view> response_topic;
  std::optional<std::string_view> correlation_data;
  std::vector<uint32_t> subscription_identifiers;
  std::optional<uint32_t> session_expiry_interval;
  std::optional<std::string_view> authentication_method;
  std::optional<uint8_t> request_problem_information;
  std::optional<uint32_t> will_delay_interval;
  std::optional<uint8_t> request_response_information;
  std::optional<std::string_view> reason_string;
  std::optional<uint16_t> receive_maximum;
  std::optional<uint16_t> topic_alias_maximum;
  std::optional<uint16_t> topic_alias;
  std::optional<uint32_t> maximum_packet_size;
  std::vector<UserProperty> user_properties;
};

// Decodes a property list (its variable-length byte count, then the properties) from the front
// of `in`, advancing `in` past it. Returns why it is malformed, or nullopt.
std::optional<std::string> decode_properties(std::string_view* in, PropertyContext context,
                                             Properties* out);

// Builds a property list; bytes() is the list without its length prefix.
class PropertyWriter {
 public:
  PropertyWriter& byte(PropertyId id, uint8_t v);
  PropertyWriter& u16(PropertyId id, uint16_t v);
  PropertyWriter& u32(PropertyId id, uint32_t v);
  PropertyWriter& varint(PropertyId id, uint32_t v);
  PropertyWriter& string(PropertyId id, std::string_view v);  // also binary data
  PropertyWriter& user_property(std::string_view name, std::string_view value);
  const std::string& bytes() const { return bytes_; }
  bool empty() const { return bytes_.empty(); }
  void clear() { bytes_.clear(); }

 private:
  std::string bytes_;
};

// A Variable Byte Integer (section 1.5.5): 1 to 4 bytes.
void put_varint(std::string& out, uint32_t v);
size_t varint_size(uint32_t v);
// Reads one from the front of `in`; false if it is truncated or longer than 4 bytes.
bool take_varint(std::string_view* in, uint32_t* v);

}  // namespace warren::mqtt
