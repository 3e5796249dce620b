#include "stomp/message_mapping.h"

#include <charconv>

#include "common/basic_properties.h"
#include "common/field_table.h"
#include "stomp/destination.h"

namespace warren::stomp {

namespace {

// Headers that are properties (or the destination), not AMQP headers (rabbit_stomp_util's
// user_header/1).
bool is_property_header(std::string_view name) {
  for (std::string_view p : {"content-type", "content-encoding", "persistent", "priority",
                             "correlation-id", "reply-to", "expiration", "amqp-message-id",
                             "timestamp", "type", "user-id", "app-id", "destination"})
    if (name == p) return true;
  return false;
}

// RabbitMQ's integer_header: list_to_integer(string:strip(V)), surrounding spaces allowed.
template <class T>
bool integer(std::string_view text, T* out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && p == text.data() + text.size();
}

}  // namespace

std::optional<PublishProperties> publish_properties(const Frame& send,
                                                    const std::string* reply_to) {
  BasicProperties p;
  PublishProperties out;
  auto text = [&](std::string_view name, std::string_view& field, uint16_t flag) {
    if (const std::string* v = send.header(name)) {
      field = *v;
      p.flags |= flag;
    }
  };
  text("content-type", p.content_type, BasicProperties::kFlagContentType);
  text("content-encoding", p.content_encoding, BasicProperties::kFlagContentEncoding);
  text("correlation-id", p.correlation_id, BasicProperties::kFlagCorrelationId);
  text("reply-to", p.reply_to, BasicProperties::kFlagReplyTo);
  if (reply_to != nullptr) p.reply_to = *reply_to;
  text("expiration", p.expiration, BasicProperties::kFlagExpiration);
  text("amqp-message-id", p.message_id, BasicProperties::kFlagMessageId);
  text("type", p.type, BasicProperties::kFlagType);
  text("user-id", p.user_id, BasicProperties::kFlagUserId);
  text("app-id", p.app_id, BasicProperties::kFlagAppId);
  if (send.boolean("persistent").value_or(false)) {
    p.delivery_mode = 2;
    p.flags |= BasicProperties::kFlagDeliveryMode;
  }
  if (const std::string* v = send.header("priority")) {
    if (!integer(*v, &p.priority)) return std::nullopt;
    p.flags |= BasicProperties::kFlagPriority;
  }
  if (const std::string* v = send.header("timestamp")) {
    if (!integer(*v, &p.timestamp)) return std::nullopt;
    p.flags |= BasicProperties::kFlagTimestamp;
  }
  // Every other header, in the reverse of the frame's order (RabbitMQ's parser collects them
  // that way), as long strings; the table is present even when empty.
  FieldTable headers;
  for (auto it = send.headers.rbegin(); it != send.headers.rend(); ++it)
    if (!is_property_header(it->first))
      headers.entries.emplace_back(it->first, FieldValue(std::string(it->second)));
  std::string encoded_headers = encode_table_body(headers);
  p.headers = encoded_headers;
  p.flags |= BasicProperties::kFlagHeaders;
  Writer w(out.raw);
  p.encode(w);
  out.delivery_mode = p.has_delivery_mode() ? p.delivery_mode : 0;
  out.priority = p.has_priority() ? p.priority : 0;
  if (p.has_expiration()) out.expiration = std::string(p.expiration);
  if (p.has_user_id()) out.user_id = std::string(p.user_id);
  return out;
}

void append_message_headers(std::string_view raw_properties, std::vector<Header>& out) {
  Reader r(raw_properties);
  BasicProperties p;
  if (!p.decode(r)) return;
  // AMQP headers of the types RabbitMQ converts (long string, signed 32- and 64-bit integers);
  // others (booleans, tables, ...) are left out.
  if (p.has_headers()) {
    if (auto table = decode_table(p.headers)) {
      for (const auto& [name, value] : table->entries) {
        if (const auto* s = std::get_if<std::string>(&value.v)) {
          out.emplace_back(name, *s);
        } else if (const auto* i = std::get_if<int32_t>(&value.v)) {
          out.emplace_back(name, std::to_string(*i));
        } else if (const auto* l = std::get_if<int64_t>(&value.v)) {
          out.emplace_back(name, std::to_string(*l));
        }
      }
    }
  }
  auto text = [&](std::string_view name, bool present, std::string_view value) {
    if (present) out.emplace_back(std::string(name), std::string(value));
  };
  text("app-id", p.has_app_id(), p.app_id);
  text("user-id", p.has_user_id(), p.user_id);
  text("type", p.has_type(), p.type);
  if (p.has_timestamp()) out.emplace_back("timestamp", std::to_string(p.timestamp));
  text("amqp-message-id", p.has_message_id(), p.message_id);
  text("expiration", p.has_expiration(), p.expiration);
  if (p.has_reply_to()) {
    // A plain queue name is shown as the /reply-queue/ destination that routes back to it.
    out.emplace_back("reply-to", has_destination_prefix(p.reply_to)
                                     ? std::string(p.reply_to)
                                     : "/reply-queue/" + std::string(p.reply_to));
  }
  text("correlation-id", p.has_correlation_id(), p.correlation_id);
  if (p.has_priority()) out.emplace_back("priority", std::to_string(p.priority));
  // Delivery mode 2 is "persistent:true"; RabbitMQ writes any other mode as its number.
  if (p.has_delivery_mode())
    out.emplace_back("persistent",
                     p.delivery_mode == 2 ? std::string("true") : std::to_string(p.delivery_mode));
  text("content-encoding", p.has_content_encoding(), p.content_encoding);
  text("content-type", p.has_content_type(), p.content_type);
}

}  // namespace warren::stomp
