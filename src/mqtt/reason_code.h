// MQTT 5.0 reason codes (OASIS MQTT 5.0 section 2.4): the result of CONNECT, PUBLISH,
// SUBSCRIBE and UNSUBSCRIBE, and why a DISCONNECT closes the connection. MQTT 3.1.1 has only
// the CONNACK return codes (ConnackCode) and SUBACK's 0x80.
#pragma once

#include <cstdint>

namespace warren::mqtt::reason {

constexpr uint8_t kSuccess = 0x00;  // also "normal disconnection" and "granted QoS 0"
constexpr uint8_t kGrantedQos1 = 0x01;
constexpr uint8_t kDisconnectWithWill = 0x04;
constexpr uint8_t kNoMatchingSubscribers = 0x10;
constexpr uint8_t kNoSubscriptionExisted = 0x11;
constexpr uint8_t kUnspecifiedError = 0x80;
constexpr uint8_t kMalformedPacket = 0x81;
constexpr uint8_t kProtocolError = 0x82;
constexpr uint8_t kImplementationSpecificError = 0x83;
constexpr uint8_t kUnsupportedProtocolVersion = 0x84;
constexpr uint8_t kClientIdentifierNotValid = 0x85;
constexpr uint8_t kBadUserNameOrPassword = 0x86;
constexpr uint8_t kNotAuthorized = 0x87;
constexpr uint8_t kServerUnavailable = 0x88;
constexpr uint8_t kServerShuttingDown = 0x8B;
constexpr uint8_t kBadAuthenticationMethod = 0x8C;
constexpr uint8_t kKeepAliveTimeout = 0x8D;
constexpr uint8_t kSessionTakenOver = 0x8E;
constexpr uint8_t kTopicFilterInvalid = 0x8F;
constexpr uint8_t kTopicNameInvalid = 0x90;
constexpr uint8_t kReceiveMaximumExceeded = 0x93;
constexpr uint8_t kTopicAliasInvalid = 0x94;
constexpr uint8_t kPacketTooLarge = 0x95;
constexpr uint8_t kQuotaExceeded = 0x97;
constexpr uint8_t kAdministrativeAction = 0x98;
constexpr uint8_t kQosNotSupported = 0x9B;
constexpr uint8_t kSharedSubscriptionsNotSupported = 0x9E;

}  // namespace warren::mqtt::reason
