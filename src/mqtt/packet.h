// MQTT 3.1 / 3.1.1 control packets (OASIS MQTT 3.1.1 section 2-3): the fixed header with its
// variable-length "remaining length", and the packets a client sends, decoded into values.
// Malformed input is an error value (the connection closes), never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

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

// The protocol levels of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1 ("MQTT").
constexpr uint8_t kLevel31 = 3;
constexpr uint8_t kLevel311 = 4;
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
};

struct Connect {
  std::string protocol_name;  // "MQTT" or "MQIsdp"
  uint8_t level = 0;
  bool clean_session = false;
  uint16_t keep_alive = 0;  // seconds; 0 = off
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;
};

struct Publish {
  std::string_view topic;    // views into the packet's bytes
  std::string_view payload;
  uint16_t packet_id = 0;    // 0 for QoS 0
  uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
};

struct TopicRequest {
  std::string filter;
  uint8_t qos = 0;  // requested (SUBSCRIBE only)
};

struct Subscribe {
  uint16_t packet_id = 0;
  std::vector<TopicRequest> topics;
};

using Unsubscribe = Subscribe;  // the same shape, without QoS

// Why a packet is malformed (logged; the connection is closed).
struct PacketError {
  std::string text;
};

// Each decoder takes the fixed header and the `remaining` bytes after it.
Result<Connect, PacketError> decode_connect(const FixedHeader& h, std::string_view body);
Result<Publish, PacketError> decode_publish(const FixedHeader& h, std::string_view body);
// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id.
Result<uint16_t, PacketError> decode_packet_id(const FixedHeader& h, std::string_view body);
Result<Subscribe, PacketError> decode_subscribe(const FixedHeader& h, std::string_view body);
Result<Unsubscribe, PacketError> decode_unsubscribe(const FixedHeader& h, std::string_view body);
// PINGREQ, DISCONNECT: no body, flags 0.
std::optional<PacketError> check_empty(const FixedHeader& h, std::string_view body);

// Encoders append a whole packet to `out`.
void write_connack(std::string& out, bool session_present, ConnackCode code);
void write_publish(std::string& out, std::string_view topic, std::string_view payload,
                   uint8_t qos, uint16_t packet_id, bool dup, bool retain);
void write_puback(std::string& out, uint16_t packet_id);
void write_suback(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes);
void write_unsuback(std::string& out, uint16_t packet_id);
void write_pingresp(std::string& out);
// The fixed header alone (type, flags, remaining length): for encoders and tests.
void write_fixed_header(std::string& out, PacketType type, uint8_t flags, uint32_t remaining);

}  // namespace warren::mqtt
