#include "mqtt/packet.h"

#include "common/utf8.h"

namespace warren::mqtt {

namespace {

// Reads the big-endian fields of a packet body; every read checks the bytes are there.
class BodyReader {
 public:
  explicit BodyReader(std::string_view s) : s_(s) {}
  bool u8(uint8_t* v) {
    if (s_.empty()) return false;
    *v = static_cast<uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return true;
  }
  bool u16(uint16_t* v) {
    if (s_.size() < 2) return false;
    *v = static_cast<uint16_t>((static_cast<uint8_t>(s_[0]) << 8) | static_cast<uint8_t>(s_[1]));
    s_.remove_prefix(2);
    return true;
  }
  // A two-byte length and that many bytes (an MQTT "UTF-8 string" or binary data).
  bool bytes(std::string_view* v) {
    uint16_t n = 0;
    if (!u16(&n) || s_.size() < n) return false;
    *v = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  bool empty() const { return s_.empty(); }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

PacketError error(std::string text) { return PacketError{std::move(text)}; }

// MQTT strings are UTF-8 without U+0000 (3.1.1 section 1.5.3).
bool valid_string(std::string_view s) {
  return is_rabbit_utf8(s) && s.find('\0') == std::string_view::npos;
}

bool has_wildcard(std::string_view topic) {
  return topic.find_first_of("+#") != std::string_view::npos;
}

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

PacketError malformed_properties(std::string_view what, std::string why) {
  return error(std::string(what) + " properties malformed: " + why);
}

}  // namespace

bool supported_protocol(std::string_view name, uint8_t level) {
  return (name == "MQTT" && (level == kLevel311 || level == kLevel5)) ||
         (name == "MQIsdp" && level == kLevel31);
}

HeaderStatus parse_fixed_header(std::string_view in, FixedHeader* out) {
  if (in.size() < 2) return HeaderStatus::kNeedMore;
  const uint8_t first = static_cast<uint8_t>(in[0]);
  const uint8_t type = first >> 4;
  if (type == 0 || type == 15) return HeaderStatus::kMalformed;  // reserved types
  uint32_t value = 0;
  for (size_t i = 1; i <= 4; ++i) {
    if (i >= in.size()) return HeaderStatus::kNeedMore;
    const uint8_t b = static_cast<uint8_t>(in[i]);
    value |= static_cast<uint32_t>(b & 0x7F) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      out->type = static_cast<PacketType>(type);
      out->flags = first & 0x0F;
      out->remaining = value;
      out->header_size = static_cast<uint8_t>(i + 1);
      return HeaderStatus::kComplete;
    }
  }
  return HeaderStatus::kMalformed;  // a fifth length byte
}

Result<Connect, PacketError> decode_connect(const FixedHeader& h, std::string_view body) {
  if (h.flags != 0) return error("CONNECT with reserved flags set");
  BodyReader r(body);
  Connect c;
  std::string_view name;
  uint8_t flags = 0;
  if (!r.bytes(&name) || !r.u8(&c.level)) return error("CONNECT too short");
  c.protocol_name.assign(name);
  // An unknown protocol name or level is answered with CONNACK 1 by the caller, so the rest is
  // only read for the versions this server speaks.
  if (!supported_protocol(name, c.level)) return c;
  const bool v5 = c.level == kLevel5;
  if (!r.u8(&flags) || !r.u16(&c.keep_alive)) return error("CONNECT too short");
  if ((flags & 0x01) != 0) return error("CONNECT reserved flag set");
  c.clean_session = (flags & 0x02) != 0;
  const bool will = (flags & 0x04) != 0;
  const uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = (flags & 0x20) != 0;
  const bool has_password = (flags & 0x40) != 0;
  const bool has_username = (flags & 0x80) != 0;
  if (will_qos == 3) return error("CONNECT will QoS 3");
  if (!will && (will_qos != 0 || will_retain)) return error("CONNECT will QoS/retain without will");
  if (v5) {
    std::string_view rest = r.rest();
    if (auto e = decode_properties(&rest, PropertyContext::kConnect, &c.properties))
      return malformed_properties("CONNECT", *e);
    r = BodyReader(rest);
  }
  std::string_view s;
  if (!r.bytes(&s) || !valid_string(s)) return error("CONNECT client identifier malformed");
  c.client_id.assign(s);
  if (will) {
    Will w;
    if (v5) {
      std::string_view rest = r.rest();
      Properties will_properties;
      if (auto e = decode_properties(&rest, PropertyContext::kWill, &will_properties))
        return malformed_properties("CONNECT will", *e);
      w.properties.assign(r.rest().substr(0, r.rest().size() - rest.size()));
      r = BodyReader(rest);
    }
    std::string_view topic, payload;
    if (!r.bytes(&topic) || !valid_string(topic) || topic.empty() || has_wildcard(topic))
      return error("CONNECT will topic malformed");
    if (!r.bytes(&payload)) return error("CONNECT will message malformed");
    w.topic.assign(topic);
    w.payload.assign(payload);
    w.qos = will_qos;
    w.retain = will_retain;
    c.will = std::move(w);
  }
  if (has_username) {
    if (!r.bytes(&s) || !valid_string(s)) return error("CONNECT user name malformed");
    c.username.emplace(s);
  }
  if (has_password) {
    if (!r.bytes(&s)) return error("CONNECT password malformed");
    c.password.emplace(s);
  }
  if (!r.empty()) return error("CONNECT has trailing bytes");
  return c;
}

Result<Publish, PacketError> decode_publish(const FixedHeader& h, std::string_view body,
                                            bool v5) {
  Publish p;
  p.retain = (h.flags & 0x01) != 0;
  p.qos = (h.flags >> 1) & 0x03;
  p.dup = (h.flags & 0x08) != 0;
  if (p.qos == 3) return error("PUBLISH with QoS 3");
  BodyReader r(body);
  if (!r.bytes(&p.topic)) return error("PUBLISH too short");
  // 5.0: an empty topic name stands for the one its Topic Alias names.
  if ((p.topic.empty() && !v5) || !valid_string(p.topic) || has_wildcard(p.topic))
    return error("PUBLISH topic name malformed");
  if (p.qos > 0) {
    if (!r.u16(&p.packet_id)) return error("PUBLISH too short");
    if (p.packet_id == 0) return error("PUBLISH with packet identifier 0");
  }
  if (v5) {
    std::string_view rest = r.rest();
    if (auto e = decode_properties(&rest, PropertyContext::kPublish, &p.properties))
      return malformed_properties("PUBLISH", *e);
    p.payload = rest;
  } else {
    p.payload = r.rest();
  }
  if (p.topic.empty() && !p.properties.topic_alias)
    return error("PUBLISH without topic name or topic alias");
  return p;
}

Result<Ack, PacketError> decode_ack(const FixedHeader& h, std::string_view body, bool v5) {
  // PUBREL carries flags 0010; the other acknowledgements 0000.
  const uint8_t expected = h.type == PacketType::kPubrel ? 0x02 : 0x00;
  if (h.flags != expected) return error("acknowledgement with wrong flags");
  BodyReader r(body);
  Ack a;
  if (!r.u16(&a.packet_id)) return error("acknowledgement of wrong length");
  // 5.0: a reason code and properties may follow (both absent means success).
  if (v5 && !r.empty()) {
    r.u8(&a.reason);
    if (!r.empty()) {
      std::string_view rest = r.rest();
      Properties ignored;
      if (auto e = decode_properties(&rest, PropertyContext::kAck, &ignored))
        return malformed_properties("acknowledgement", *e);
      r = BodyReader(rest);
    }
  }
  if (!r.empty()) return error("acknowledgement of wrong length");
  return a;
}

namespace {

Result<Subscribe, PacketError> decode_topic_list(const FixedHeader& h, std::string_view body,
                                                bool with_qos, const char* what, bool v5) {
  if (h.flags != 0x02) return error(std::string(what) + " with wrong flags");
  BodyReader r(body);
  Subscribe s;
  if (!r.u16(&s.packet_id)) return error(std::string(what) + " too short");
  if (s.packet_id == 0) return error(std::string(what) + " with packet identifier 0");
  if (v5) {
    std::string_view rest = r.rest();
    if (auto e = decode_properties(
            &rest, with_qos ? PropertyContext::kSubscribe : PropertyContext::kUnsubscribe,
            &s.properties))
      return malformed_properties(what, *e);
    r = BodyReader(rest);
  }
  while (!r.empty()) {
    std::string_view filter;
    TopicRequest t;
    if (!r.bytes(&filter) || filter.empty() || !valid_string(filter))
      return error(std::string(what) + " topic filter malformed");
    if (with_qos) {
      // 3.1.1: the requested QoS, other bits reserved. 5.0: QoS (bits 0-1), No Local (2),
      // Retain As Published (3), Retain Handling (4-5); bits 6-7 reserved.
      uint8_t options = 0;
      if (!r.u8(&options)) return error(std::string(what) + " options missing");
      t.qos = options & 0x03;
      if (t.qos > 2 || (options & (v5 ? 0xC0 : 0xFC)) != 0)
        return error(std::string(what) + " subscription options malformed");
      t.no_local = (options & 0x04) != 0;
      t.retain_as_published = (options & 0x08) != 0;
      t.retain_handling = (options >> 4) & 0x03;
      if (t.retain_handling == 3) return error(std::string(what) + " retain handling 3");
    }
    t.filter.assign(filter);
    s.topics.push_back(std::move(t));
  }
  if (s.topics.empty()) return error(std::string(what) + " without topic filters");
  return s;
}

}  // namespace

Result<Subscribe, PacketError> decode_subscribe(const FixedHeader& h, std::string_view body,
                                                bool v5) {
  return decode_topic_list(h, body, true, "SUBSCRIBE", v5);
}

Result<Unsubscribe, PacketError> decode_unsubscribe(const FixedHeader& h, std::string_view body,
                                                    bool v5) {
  return decode_topic_list(h, body, false, "UNSUBSCRIBE", v5);
}

Result<Disconnect, PacketError> decode_disconnect(const FixedHeader& h, std::string_view body,
                                                  bool v5) {
  Disconnect d;
  if (!v5) {
    if (auto e = check_empty(h, body)) return *e;
    return d;
  }
  if (h.flags != 0) return error("DISCONNECT with flags set");
  BodyReader r(body);
  if (r.empty()) return d;
  r.u8(&d.reason);
  if (r.empty()) return d;
  std::string_view rest = r.rest();
  if (auto e = decode_properties(&rest, PropertyContext::kDisconnect, &d.properties))
    return malformed_properties("DISCONNECT", *e);
  if (!rest.empty()) return error("DISCONNECT has trailing bytes");
  return d;
}

std::optional<PacketError> check_empty(const FixedHeader& h, std::string_view body) {
  if (h.flags != 0 || !body.empty()) return error("packet with unexpected flags or body");
  return std::nullopt;
}

void write_fixed_header(std::string& out, PacketType type, uint8_t flags, uint32_t remaining) {
  out.push_back(static_cast<char>((static_cast<uint8_t>(type) << 4) | (flags & 0x0F)));
  do {
    uint8_t b = remaining & 0x7F;
    remaining >>= 7;
    if (remaining != 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (remaining != 0);
}

void write_connack(std::string& out, bool session_present, ConnackCode code) {
  write_fixed_header(out, PacketType::kConnack, 0, 2);
  out.push_back(session_present ? 1 : 0);
  out.push_back(static_cast<char>(code));
}

void write_publish(std::string& out, std::string_view topic, std::string_view payload,
                   uint8_t qos, uint16_t packet_id, bool dup, bool retain) {
  const uint8_t flags = (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  const size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
  write_fixed_header(out, PacketType::kPublish, flags, static_cast<uint32_t>(remaining));
  put_u16(out, static_cast<uint16_t>(topic.size()));
  out.append(topic);
  if (qos > 0) put_u16(out, packet_id);
  out.append(payload);
}

void write_puback(std::string& out, uint16_t packet_id) {
  write_fixed_header(out, PacketType::kPuback, 0, 2);
  put_u16(out, packet_id);
}

void write_suback(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes) {
  write_fixed_header(out, PacketType::kSuback, 0, static_cast<uint32_t>(2 + codes.size()));
  put_u16(out, packet_id);
  for (uint8_t c : codes) out.push_back(static_cast<char>(c));
}

void write_unsuback(std::string& out, uint16_t packet_id) {
  write_fixed_header(out, PacketType::kUnsuback, 0, 2);
  put_u16(out, packet_id);
}

void write_pingresp(std::string& out) { write_fixed_header(out, PacketType::kPingresp, 0, 0); }

void write_connack5(std::string& out, bool session_present, uint8_t reason,
                    std::string_view properties) {
  const size_t remaining = 2 + varint_size(properties.size()) + properties.size();
  write_fixed_header(out, PacketType::kConnack, 0, static_cast<uint32_t>(remaining));
  out.push_back(session_present ? 1 : 0);
  out.push_back(static_cast<char>(reason));
  put_varint(out, static_cast<uint32_t>(properties.size()));
  out.append(properties);
}

namespace {

size_t publish5_remaining(std::string_view topic, size_t payload, uint8_t qos,
                          std::string_view properties) {
  return 2 + topic.size() + (qos > 0 ? 2 : 0) + varint_size(properties.size()) +
         properties.size() + payload;
}

size_t fixed_header_size(size_t remaining) {
  return 1 + varint_size(static_cast<uint32_t>(remaining));
}

}  // namespace

size_t publish5_size(std::string_view topic, size_t payload, uint8_t qos,
                     std::string_view properties) {
  const size_t remaining = publish5_remaining(topic, payload, qos, properties);
  return fixed_header_size(remaining) + remaining;
}

void write_publish5(std::string& out, std::string_view topic, std::string_view payload,
                    uint8_t qos, uint16_t packet_id, bool dup, bool retain,
                    std::string_view properties) {
  const uint8_t flags = (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  const size_t remaining = publish5_remaining(topic, payload.size(), qos, properties);
  write_fixed_header(out, PacketType::kPublish, flags, static_cast<uint32_t>(remaining));
  put_u16(out, static_cast<uint16_t>(topic.size()));
  out.append(topic);
  if (qos > 0) put_u16(out, packet_id);
  put_varint(out, static_cast<uint32_t>(properties.size()));
  out.append(properties);
  out.append(payload);
}

void write_puback5(std::string& out, uint16_t packet_id, uint8_t reason) {
  // Success without properties may leave out the reason code (MQTT 5.0 section 3.4.2.1).
  write_fixed_header(out, PacketType::kPuback, 0, reason == 0 ? 2 : 3);
  put_u16(out, packet_id);
  if (reason != 0) out.push_back(static_cast<char>(reason));
}

namespace {

void write_codes5(std::string& out, PacketType type, uint16_t packet_id,
                  const std::vector<uint8_t>& codes) {
  write_fixed_header(out, type, 0, static_cast<uint32_t>(3 + codes.size()));
  put_u16(out, packet_id);
  out.push_back(0);  // no properties
  for (uint8_t c : codes) out.push_back(static_cast<char>(c));
}

}  // namespace

void write_suback5(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes) {
  write_codes5(out, PacketType::kSuback, packet_id, codes);
}

void write_unsuback5(std::string& out, uint16_t packet_id, const std::vector<uint8_t>& codes) {
  write_codes5(out, PacketType::kUnsuback, packet_id, codes);
}

void write_disconnect5(std::string& out, uint8_t reason) {
  write_fixed_header(out, PacketType::kDisconnect, 0, 2);
  out.push_back(static_cast<char>(reason));
  out.push_back(0);  // no properties
}

}  // namespace warren::mqtt
