// MQTT 3.1, 3.1.1 and 5.0 control packets (OASIS MQTT 3.1.1 and 5.0, sections 2-3): the fixed
// header with its variable-length "remaining length", and the packets a client sends, decoded
// into values. A 5.0 packet adds properties (mqtt/properties.h) and reason codes. Malformed input
// is an error value (the connection closes), never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "mqtt/properties.h"

namespace warren::mqtt {

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

// The protocol levels of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1 and 5 = MQTT 5.0
// ("MQTT").
constexpr uint8_t kLevel31 = 3;
constexpr uint8_t kLevel311 = 4;
constexpr uint8_t kLevel5 = 5;
// Whether CONNECT's protocol name and level are ones this server speaks.
bool supported_protocol(std::string_view name, uint8_t level);
// The largest remaining length the four-byte encoding allows (268,435,455 bytes).
constexpr uint32_t kMaxRemainingLength = 0x0FFFFFFF;

// CONNACK return codes (3.1.1 table 3.1).
enum class ConnackCode : uint8_t {
  kAccepted = 0,
  kUnacceptableProtocolVersion = 1,
  kIdentifierRejected = 2,
  kServerUnavailable = 3,
  kBadUsernameOrPassword = 4,
  kNotAuthorized = 5,
};

// A SUBACK entry for a subscription the server refused.
constexpr uint8_t kSubackFailure = 0x80;

struct FixedHeader {
  PacketType type{};
  uint8_t flags = 0;          // the low nibble of the first byte
  uint32_t remaining = 0;     // bytes after the fixed header
  uint8_t header_size = 0;    // 2 to 5 bytes
};

enum class HeaderStatus : uint8_t { kComplete, kNeedMore, kMalformed };
// Decodes the fixed header at the front of `in`.
HeaderStatus parse_fixed_header(std::string_view in, FixedHeader* out);

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // 5.0: the will's property list as received (its length prefix included), decoded again with
  // decode_properties(PropertyContext::kWill) when the will is published.
  std::string properties;
};

struct Connect {
  std::string protocol_name;  // "MQTT" or "MQIsdp"
  uint8_t level = 0;
  bool clean_session = false;  // 5.0: Clean Start
  uint16_t keep_alive = 0;  // seconds; 0 = off
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;
  Properties properties;  // 5.0; views into the packet
};

struct Publish {
  std::string_view topic;    // views into the packet's bytes
  std::string_view payload;
  uint16_t packet_id = 0;    // 0 for QoS 0
  uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  Properties properties;  // 5.0
};

struct TopicRequest {
  std::string filter;
  // SUBSCRIBE only: the requested QoS, and 5.0's other subscription options.
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;  // 0: send retained at subscribe, 1: if new, 2: never
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<TopicRequest> topics;
  Properties properties;  // 5.0
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
  uint16_t packet_id = 0;
  uint8_t reason = 0;  // 5.0
};

struct Disconnect {
  uint8_t reason = 0;  // 5.0; 0 = normal disconnection
  Properties properties;
};

using Unsubscribe = Subscribe;  // the same shape, without QoS

// Why a packet is malformed (logged; the connection is closed).
struct PacketError {
  std::string text;
};

// Each decoder takes the fixed header and the `remaining` bytes after it; v5: the connection
// speaks MQTT 5.0.
Result<Connect, PacketError> decode_connect(const FixedHeader& h, std::string_view body);
Result<Publish, PacketError> decode_publish(const FixedHeader& h, std::string_view body,
                                            bool v5 = false);
// PUBACK, PUBREC, PUBREL, PUBCOMP.
Result<Ack, PacketError> decode_ack(const FixedHeader& h, std::string_view body, bool v5 = false);
Result<Subscribe, PacketError> decode_subscribe(const FixedHeader& h, std::string_view body,
                                                bool v5 = false);
Result<Unsubscribe, PacketError> decode_unsubscribe(const FixedHeader& h, std::string_view body,
                                                    bool v5 = false);
Result<Disconnect, PacketError> decode_disconnect(const FixedHeader& h, std::string_view body,
                                                  bool v5 = false);
// PINGREQ (and a 3.1.1 DISCONNECT): no body, flags 0.
std::optional<PacketError> check_empty(const FixedHeader& h, std::string_view body);

// Encoders append a whole packet to `out`.
void write_connack(std::string& out, bool session_present, ConnackCode code);
void write_publish(std::string& out, std::string_view topic, std::string_view payload,
                   uint8_t qos, uint16_t packet_id, bool dup, bool retain);
void write_puback(std::string& out, uint16_t packet_id);
void write_suback(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes);
void write_unsuback(std::string& out, uint16_t packet_id);
void write_pingresp(std::string& out);
// 5.0 encoders: a reason code, and a property list (PropertyWriter::bytes()) where the packet
// has one.
void write_connack5(std::string& out, bool session_present, uint8_t reason,
                    std::string_view properties);
void write_publish5(std::string& out, std::string_view topic, std::string_view payload,
                    uint8_t qos, uint16_t packet_id, bool dup, bool retain,
                    std::string_view properties);
// The size write_publish5 would give the packet.
size_t publish5_size(std::string_view topic, size_t payload, uint8_t qos,
                     std::string_view properties);
void write_puback5(std::string& out, uint16_t packet_id, uint8_t reason);
void write_suback5(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes);
void write_unsuback5(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes);
void write_disconnect5(std::string& out, uint8_t reason);
// The fixed header alone (type, flags, remaining length): for encoders and tests.
void write_fixed_header(std::string& out, PacketType type, uint8_t flags, uint32_t remaining);

}  // namespace warren::mqtt
