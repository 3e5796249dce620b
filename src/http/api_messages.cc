// Messages over HTTP, as the management UI and rabbitmqadmin use them:
// POST /api/exchanges/{vhost}/{name}/publish ({"routed": bool}) through the broker's one publish
// path, POST /api/queues/{vhost}/{name}/get (count, ackmode, encoding, truncate) through a
// delivery tracker like a channel's, and DELETE /api/queues/{vhost}/{name}/contents (purge).
#include <string>

#include "broker/delivery_tracker.h"
#include "broker/field_table_json.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "common/basic_properties.h"
#include "common/field_table.h"
#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

std::string base64(std::string_view s) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kChars[(v >> k) & 63];
  }
  if (i < s.size()) {
    uint32_t v = uint8_t(s[i]) << 16;
    if (i + 1 < s.size()) v |= uint8_t(s[i + 1]) << 8;
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < s.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> unbase64(std::string_view s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

json::object properties_json(std::string_view raw) {
  BasicProperties p;
  Reader r(raw);
  json::object o;
  if (!p.decode(r)) return o;
  if (p.has_content_type()) o["content_type"] = p.content_type;
  if (p.has_content_encoding()) o["content_encoding"] = p.content_encoding;
  if (p.has_headers())
    if (auto t = decode_table(p.headers)) o["headers"] = to_json(*t);
  if (p.has_delivery_mode()) o["delivery_mode"] = p.delivery_mode;
  if (p.has_priority()) o["priority"] = p.priority;
  if (p.has_correlation_id()) o["correlation_id"] = p.correlation_id;
  if (p.has_reply_to()) o["reply_to"] = p.reply_to;
  if (p.has_expiration()) o["expiration"] = p.expiration;
  if (p.has_message_id()) o["message_id"] = p.message_id;
  if (p.has_timestamp()) o["timestamp"] = p.timestamp;
  if (p.has_type()) o["type"] = p.type;
  if (p.has_user_id()) o["user_id"] = p.user_id;
  if (p.has_app_id()) o["app_id"] = p.app_id;
  return o;
}

// The properties object of a publish request as AMQP content-header properties; an error text
// for a bad value.
std::optional<std::string> encode_properties(const json::object& o, BasicProperties& p,
                                             std::string& headers, std::string& out,
                                             int64_t* expiration_ms) {
  auto text = [&](const char* key, std::string_view& field, uint16_t flag) {
    if (const json::value* v = o.if_contains(key); v && v->is_string()) {
      field = v->get_string();
      p.flags |= flag;
    }
  };
  text("content_type", p.content_type, BasicProperties::kFlagContentType);
  text("content_encoding", p.content_encoding, BasicProperties::kFlagContentEncoding);
  text("correlation_id", p.correlation_id, BasicProperties::kFlagCorrelationId);
  text("reply_to", p.reply_to, BasicProperties::kFlagReplyTo);
  text("expiration", p.expiration, BasicProperties::kFlagExpiration);
  text("message_id", p.message_id, BasicProperties::kFlagMessageId);
  text("type", p.type, BasicProperties::kFlagType);
  text("user_id", p.user_id, BasicProperties::kFlagUserId);
  text("app_id", p.app_id, BasicProperties::kFlagAppId);
  if (const json::value* v = o.if_contains("delivery_mode"); v && v->is_number()) {
    p.delivery_mode = static_cast<uint8_t>(v->to_number<int64_t>());
    p.flags |= BasicProperties::kFlagDeliveryMode;
  }
  if (const json::value* v = o.if_contains("priority"); v && v->is_number()) {
    p.priority = static_cast<uint8_t>(v->to_number<int64_t>());
    p.flags |= BasicProperties::kFlagPriority;
  }
  if (const json::value* v = o.if_contains("timestamp"); v && v->is_number()) {
    p.timestamp = static_cast<uint64_t>(v->to_number<int64_t>());
    p.flags |= BasicProperties::kFlagTimestamp;
  }
  if (const json::value* v = o.if_contains("headers"); v && v->is_object()) {
    headers = encode_table_body(table_from_json(*v));
    p.headers = headers;
    p.flags |= BasicProperties::kFlagHeaders;
  }
  if (p.has_expiration()) {
    std::string reason;
    if (!broker::parse_expiration(p.expiration, expiration_ms, &reason))
      return "invalid expiration '" + std::string(p.expiration) + "': " + reason;
  }
  Writer w(out);
  p.encode(w);
  return std::nullopt;
}

void publish(ApiCall& c, broker::VHost& vh, const std::string& exchange) {
  Response& r = c.r;
  auto body = json_body(c.req, r);
  if (!body) return;
  std::string key = json_string(*body, "routing_key");
  std::string payload = json_string(*body, "payload");
  std::string encoding = json_string(*body, "payload_encoding", "string");
  if (encoding == "base64") {
    auto decoded = unbase64(payload);
    if (!decoded)
      return reply_error(r, bhttp::status::bad_request, "bad_request", "not_base64");
    payload = std::move(*decoded);
  } else if (encoding != "string") {
    return reply_error(r, bhttp::status::bad_request, "bad_request",
                       "payload_encoding must be string or base64");
  }
  if (auto s = c.broker.check_access(c.user.name, vh.name(), auth::Permission::kWrite,
                                     "exchange", exchange))
    return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
  if (!exchange.empty()) {
    auto x = vh.publishable_exchange(exchange);
    if (!x) return reply_broker_error(r, x.error());
    // RabbitMQ publishes through an AMQP channel, whose 403 comes back as this 400.
    if (auto s = c.broker.check_topic_access_on(*x, c.user.name, vh.name(),
                                                auth::Permission::kWrite, key))
      return reply_error(r, bhttp::status::bad_request, "bad_request",
                         "403 ACCESS_REFUSED - " + s->text);
  }
  BasicProperties props;
  std::string headers, raw;
  int64_t expiration_ms = -1;
  json::object no_properties;
  const json::value* pv = body->if_contains("properties");
  const json::object& po = pv != nullptr && pv->is_object() ? pv->get_object() : no_properties;
  if (auto bad = encode_properties(po, props, headers, raw, &expiration_ms))
    return reply_error(r, bhttp::status::bad_request, "bad_request", *bad);
  broker::MessageRef msg = broker::Message::create(exchange, key, raw, payload.size());
  msg->append_body(payload);
  msg->delivery_mode = props.has_delivery_mode() ? props.delivery_mode : 0;
  msg->priority = props.has_priority() ? props.priority : 0;
  msg->expiration_ms = expiration_ms;
  broker::PublishRequest request{std::move(msg)};
  // The firehose names the HTTP user; RabbitMQ's own connection for the API has no match here.
  const broker::ClientIdentity publisher{c.user.name, "", 0};
  request.publisher = &publisher;
  broker::PublishOutcome outcome = vh.publish(request);
  c.broker.count_publish(vh, outcome, nullptr);
  reply_json(r, bhttp::status::ok,
             json::object{{"routed", outcome.queues > 0 || outcome.delayed > 0}});
}

void get(ApiCall& c, broker::VHost& vh, const std::string& queue) {
  Response& r = c.r;
  auto body = json_body(c.req, r);
  if (!body) return;
  if (auto s = c.broker.check_access(c.user.name, vh.name(), auth::Permission::kRead, "queue",
                                     queue))
    return reply_error(r, bhttp::status::unauthorized, "not_authorised", s->text);
  int64_t count = 1;
  if (const json::value* v = body->if_contains("count"); v && v->is_number())
    count = v->to_number<int64_t>();
  else if (v && v->is_string())
    count = std::atoll(std::string(v->get_string()).c_str());
  std::string ackmode = json_string(*body, "ackmode", "ack_requeue_true");
  broker::Settlement how;
  if (ackmode == "ack_requeue_true" || ackmode == "reject_requeue_true")
    how = broker::Settlement::kRequeue;
  else if (ackmode == "ack_requeue_false")
    how = broker::Settlement::kAck;
  else if (ackmode == "reject_requeue_false")
    how = broker::Settlement::kReject;
  else
    return reply_error(r, bhttp::status::bad_request, "bad_request", "Unknown ackmode");
  std::string encoding = json_string(*body, "encoding", "auto");
  int64_t truncate = -1;
  if (const json::value* v = body->if_contains("truncate"); v && v->is_number())
    truncate = v->to_number<int64_t>();
  auto q = vh.usable_queue(queue, 0);
  if (!q) return reply_broker_error(r, q.error());
  // Take them all first, then settle: a requeued message goes back to the head and would be
  // taken again.
  broker::DeliveryTracker tracker;
  json::array out;
  uint64_t last_tag = 0;
  const broker::ClientIdentity receiver{c.user.name, "", 0};  // for the firehose
  for (int64_t i = 0; i < count; ++i) {
    broker::QueuedMessage qm = (*q)->pop(&receiver);
    if (!qm.msg) break;
    broker::MessageRef msg = qm.msg;
    bool redelivered = qm.redelivered;
    last_tag = tracker.delivered(nullptr, *q, std::move(qm), false);
    std::string_view payload = msg->body();
    size_t bytes = payload.size();
    if (truncate >= 0 && payload.size() > static_cast<size_t>(truncate))
      payload = payload.substr(0, static_cast<size_t>(truncate));
    bool as_string = encoding != "base64" && valid_utf8(payload);
    out.push_back(json::object{{"payload_bytes", bytes},
                               {"redelivered", redelivered},
                               {"exchange", msg->exchange()},
                               {"routing_key", msg->routing_key()},
                               {"message_count", (*q)->message_count()},
                               {"properties", properties_json(msg->raw_properties())},
                               {"payload", as_string ? std::string(payload) : base64(payload)},
                               {"payload_encoding", as_string ? "string" : "base64"}});
  }
  if (last_tag != 0) (void)tracker.settle(last_tag, true, how);
  else c.broker.count_get_empty(**q, nullptr);
  reply_json(r, bhttp::status::ok, out);
}

}  // namespace

bool handle_messages(ApiCall& c) {
  const auto& seg = c.seg();
  if (seg.size() != 4) return false;
  broker::VHost* vh = c.broker.find_vhost(seg[1]);
  if (vh == nullptr || !c.visible(seg[1])) return false;
  if (seg[0] == "exchanges" && seg[3] == "publish" && c.method() == bhttp::verb::post) {
    const std::string name = seg[2] == "amq.default" ? "" : seg[2];
    if (!name.empty() && vh->find_exchange(name) == nullptr) return false;
    publish(c, *vh, name);
    return true;
  }
  if (seg[0] == "queues" && seg[3] == "get" && c.method() == bhttp::verb::post) {
    if (vh->find_queue(seg[2]) == nullptr) return false;
    get(c, *vh, seg[2]);
    return true;
  }
  if (seg[0] == "queues" && seg[3] == "contents" && c.method() == bhttp::verb::delete_) {
    if (vh->find_queue(seg[2]) == nullptr) return false;
    if (auto s = c.broker.check_access(c.user.name, seg[1], auth::Permission::kRead, "queue",
                                       seg[2])) {
      reply_error(c.r, bhttp::status::unauthorized, "not_authorised", s->text);
      return true;
    }
    auto purged = vh->purge_queue(seg[2], 0);
    if (!purged) reply_broker_error(c.r, purged.error());
    else no_content(c.r);
    return true;
  }
  return false;
}

}  // namespace warren::http
