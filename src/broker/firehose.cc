// The firehose's trace messages (firehose.h), written straight to AMQP field-table bytes: no
// FieldTable is built for a message that is copied once and never read back by the broker.
#include "broker/firehose.h"

#include <algorithm>

#include "broker/queue.h"
#include "broker/vhost.h"
#include "common/basic_properties.h"
#include "common/wire.h"

namespace warren::broker {
namespace {

// Appends field-table entries with the types rabbit_trace gives them: longstr 'S', signedint
// 'I', array 'A' and table 'F'.
class TableWriter {
 public:
  explicit TableWriter(std::string& out) : w_(out) {}

  void longstr(std::string_view key, std::string_view value) {
    w_.shortstr(key);
    w_.u8('S');
    w_.longstr(value);
  }
  // RabbitMQ writes a signedint as 32 bits whatever the value (a timestamp past 2038 wraps).
  void signedint(std::string_view key, int64_t value) {
    w_.shortstr(key);
    w_.u8('I');
    w_.u32(static_cast<uint32_t>(value));
  }
  // A nested table given as its entries (without length).
  void table(std::string_view key, std::string_view entries) {
    w_.shortstr(key);
    w_.u8('F');
    w_.longstr(entries);
  }
  // An array of long strings.
  template <class Strings>
  void longstr_array(std::string_view key, const Strings& values) {
    w_.shortstr(key);
    w_.u8('A');
    size_t at = w_.size();
    w_.u32(0);
    for (std::string_view v : values) {
      w_.u8('S');
      w_.longstr(v);
    }
    w_.patch_u32(at, static_cast<uint32_t>(w_.size() - at - 4));
  }

 private:
  Writer w_;
};

// The message's properties as rabbit_trace tabulates them: every property that is set, named
// as in the spec, in reverse declaration order (it folds the record onto a list head), integers
// as signedint, the headers as a table and the rest as long strings.
std::string properties_table(const Message& msg) {
  std::string out;
  BasicProperties p;
  Reader r(msg.raw_properties());
  if (!p.decode(r)) return out;  // validated when published: cannot happen
  TableWriter t(out);
  if (p.has_reserved()) t.longstr("cluster_id", p.reserved);
  if (p.has_app_id()) t.longstr("app_id", p.app_id);
  if (p.has_user_id()) t.longstr("user_id", p.user_id);
  if (p.has_type()) t.longstr("type", p.type);
  if (p.has_timestamp()) t.signedint("timestamp", static_cast<int64_t>(p.timestamp));
  if (p.has_message_id()) t.longstr("message_id", p.message_id);
  if (p.has_expiration()) t.longstr("expiration", p.expiration);
  if (p.has_reply_to()) t.longstr("reply_to", p.reply_to);
  if (p.has_correlation_id()) t.longstr("correlation_id", p.correlation_id);
  if (p.has_priority()) t.signedint("priority", p.priority);
  if (p.has_delivery_mode()) t.signedint("delivery_mode", p.delivery_mode);
  if (p.has_headers()) t.table("headers", p.headers);
  if (p.has_content_encoding()) t.longstr("content_encoding", p.content_encoding);
  if (p.has_content_type()) t.longstr("content_type", p.content_type);
  return out;
}

// The entries every trace message starts with (rabbit_trace's msg_to_table). The routing keys
// are the publish's one key: Warren does not route by CC/BCC headers, which RabbitMQ adds here.
void message_entries(TableWriter& t, const Message& msg, std::string_view node) {
  t.longstr("exchange_name", msg.exchange());
  std::string_view keys[] = {msg.routing_key()};
  t.longstr_array("routing_keys", keys);
  t.table("properties", properties_table(msg));
  t.longstr("node", node);
}

// A direct reply-to address: RabbitMQ's default exchange delivers it to the requester and
// reports no queue.
bool reply_address(std::string_view routing_key) {
  return routing_key.starts_with("amq.rabbitmq.reply-to.");
}

}  // namespace

std::string Firehose::publish_headers(const Message& msg, std::string_view node,
                                      std::string_view vhost, const ClientIdentity& publisher,
                                      const std::vector<std::string_view>& routed_queues) {
  std::string out;
  TableWriter t(out);
  message_entries(t, msg, node);
  t.longstr("vhost", vhost);
  t.longstr("connection", publisher.connection);
  t.signedint("channel", publisher.channel);
  t.longstr("user", publisher.user);
  t.longstr_array("routed_queues", routed_queues);
  return out;
}

std::string Firehose::deliver_headers(const Message& msg, std::string_view node,
                                      std::string_view vhost, bool redelivered,
                                      const ClientIdentity& receiver) {
  std::string out;
  TableWriter t(out);
  message_entries(t, msg, node);
  t.signedint("redelivered", redelivered ? 1 : 0);
  t.longstr("vhost", vhost);
  t.longstr("connection", receiver.connection);
  t.signedint("channel", receiver.channel);
  t.longstr("user", receiver.user);
  return out;
}

void Firehose::published(const Message& msg, const std::vector<Queue*>& routed,
                         const ClientIdentity& publisher) {
  if (msg.exchange() == kExchange) return;  // a trace message is not traced (no loop)
  // RabbitMQ lists the queues sorted (lists:usort); the default exchange's "queue" is the
  // routing key itself.
  std::vector<std::string_view> names;
  if (msg.exchange().empty()) {
    if (!reply_address(msg.routing_key())) names.push_back(msg.routing_key());
  } else {
    names.reserve(routed.size());
    for (const Queue* q : routed) names.push_back(q->name());
    std::sort(names.begin(), names.end());
  }
  trace("publish", msg.exchange(), msg,
        publish_headers(msg, node_, vhost_.name(), publisher, names));
}

void Firehose::delivered(const Queue& q, const QueuedMessage& m, const ClientIdentity* receiver) {
  if (m.msg->exchange() == kExchange) return;  // consuming the firehose is not traced
  static const ClientIdentity kNobody;
  trace("deliver", q.name(), *m.msg,
        deliver_headers(*m.msg, node_, vhost_.name(), m.redelivered,
                        receiver != nullptr ? *receiver : kNobody));
}

void Firehose::trace(std::string_view kind, std::string_view name, const Message& msg,
                     const std::string& headers) {
  BasicProperties props;
  props.flags = BasicProperties::kFlagHeaders;
  props.headers = headers;
  std::string raw_props;
  Writer w(raw_props);
  props.encode(w);
  std::string routing_key;
  routing_key.reserve(kind.size() + 1 + name.size());
  routing_key.append(kind).append(".").append(name);
  // A message holds routing keys of up to 255 bytes (a short string on the wire); "deliver."
  // and a 255-byte queue name are longer.
  if (routing_key.size() > 255) routing_key.resize(255);
  MessageRef copy = Message::create(kExchange, routing_key, raw_props, msg.body_size());
  copy->append_body(msg.body());
  // No publisher: the firehose's own publish is not traced.
  PublishRequest request{std::move(copy)};
  vhost_.publish(request);
}

}  // namespace warren::broker
