// warrenctl's verbs over the broker's objects (the listings, purge/delete, close_connection,
// status, stop). Rows carry every info item a verb knows; warrenctl picks the columns.
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/post.hpp>

#include "broker/field_table_json.h"
#include "server/control_server.h"

namespace warren::server {

namespace json = boost::json;

namespace {

// Rows per loop turn for listings: building one row takes about a microsecond.
constexpr size_t kChunk = 500;

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}

bool flag(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_bool() && it->value().get_bool();
}

std::string connection_pid(const ControlContext& ctx, uint64_t id) {
  return "<" + ctx.node_name + "." + std::to_string(id) + ".0>";
}
std::string channel_pid(const ControlContext& ctx, uint64_t id, uint16_t ch) {
  return "<" + ctx.node_name + "." + std::to_string(id) + "." + std::to_string(ch) + ">";
}
std::string connection_name(const broker::ConnectionInfo& c) {
  return c.peer_host + ":" + std::to_string(c.peer_port) + " -> " + c.host + ":" +
         std::to_string(c.port);
}

// Calls row(item) for each item of a snapshot, kChunk per loop turn. Objects deleted between
// turns are skipped by row() (a queue is marked deleted; an exchange is looked up by name).
template <class T>
void chunked(ControlReply& reply, std::shared_ptr<std::vector<T>> items, size_t from,
             std::function<void(const T&, ControlReply&)> row) {
  size_t end = std::min(items->size(), from + kChunk);
  for (size_t i = from; i < end; ++i) row((*items)[i], reply);
  if (end < items->size())
    reply.next = [items, end, row](ControlReply& r) { chunked<T>(r, items, end, row); };
}

// The vhost's queues, taken in one pass: references, not copies of names (a 100,000-queue
// snapshot is a vector and reference counts, no allocation per queue).
std::shared_ptr<std::vector<broker::QueueRef>> queue_snapshot(broker::VHost* vh) {
  auto qs = std::make_shared<std::vector<broker::QueueRef>>();
  qs->reserve(vh->queues().size());
  for (const auto& [name, q] : vh->queues()) qs->push_back(q);
  return qs;
}

void list_queues(ControlContext& ctx, broker::VHost* vh, ControlReply& reply) {
  broker::Broker* b = &ctx.broker;
  std::function<void(const broker::QueueRef&, ControlReply&)> row =
      [b](const broker::QueueRef& ref, ControlReply& r) {
    const broker::Queue* q = ref.get();
    if (q->deleted()) return;
    size_t unacked = 0;
    for (const broker::Consumer* c : q->consumers()) unacked += c->unacked;
    json::object o;
    o["name"] = q->name();
    o["vhost"] = q->vhost();
    o["durable"] = q->durable();
    o["auto_delete"] = q->auto_delete();
    o["exclusive"] = q->exclusive();
    o["arguments"] = to_json(q->options().arguments);
    o["messages"] = q->message_count() + unacked;
    o["messages_ready"] = q->message_count();
    o["messages_unacknowledged"] = unacked;
    o["consumers"] = q->consumer_count();
    o["message_bytes"] = q->message_bytes();
    o["message_bytes_ready"] = q->message_bytes();
    o["messages_ram"] = q->messages_in_ram();
    o["state"] = "running";
    o["type"] = "classic";
    broker::VHost* v = b->find_vhost(q->vhost());
    const broker::Policy* p = v != nullptr ? v->policy_for_queue(q->name()) : nullptr;
    o["policy"] = p != nullptr ? p->name : "";
    r.rows.push_back(std::move(o));
  };
  chunked(reply, queue_snapshot(vh), 0, row);
}

void list_exchanges(ControlContext& ctx, broker::VHost* vh, ControlReply& reply) {
  auto names = std::make_shared<std::vector<std::string>>();
  for (const auto& [name, x] : vh->exchanges()) names->push_back(name);
  std::string vhost = vh->name();
  broker::Broker* b = &ctx.broker;
  chunked<std::string>(reply, names, 0, [b, vhost](const std::string& name, ControlReply& r) {
    broker::VHost* v = b->find_vhost(vhost);
    broker::Exchange* x = v != nullptr ? v->find_exchange(name) : nullptr;
    if (x == nullptr) return;
    json::object o;
    o["name"] = x->name();
    o["vhost"] = vhost;
    o["type"] = std::string(x->type_name());
    o["durable"] = x->options().durable;
    o["auto_delete"] = x->options().auto_delete;
    o["internal"] = x->options().internal;
    o["arguments"] = to_json(x->options().arguments);
    const broker::Policy* p = v->policy_for_exchange(name);
    o["policy"] = p != nullptr ? p->name : "";
    r.rows.push_back(std::move(o));
  });
}

json::object binding_row(std::string_view vhost, std::string_view source, std::string_view dest,
                         bool dest_is_queue, std::string_view key, const FieldTable& args) {
  json::object o;
  o["vhost"] = vhost;
  o["source_name"] = source;
  o["source_kind"] = "exchange";
  o["destination_name"] = dest;
  o["destination_kind"] = dest_is_queue ? "queue" : "exchange";
  o["routing_key"] = key;
  o["arguments"] = to_json(args);
  return o;
}

// As RabbitMQ: first every queue's binding to the default exchange, then the exchanges' bindings.
void list_bindings(ControlContext& ctx, broker::VHost* vh, ControlReply& reply) {
  std::string vhost = vh->name();
  auto names = std::make_shared<std::vector<std::string>>();
  for (const auto& [name, x] : vh->exchanges())
    if (!name.empty()) names->push_back(name);
  broker::Broker* b = &ctx.broker;
  std::function<void(const std::string&, ControlReply&)> exchange_rows =
      [b, vhost](const std::string& name, ControlReply& r) {
        broker::VHost* v = b->find_vhost(vhost);
        broker::Exchange* x = v != nullptr ? v->find_exchange(name) : nullptr;
        if (x == nullptr) return;
        for (const broker::Binding& bd : x->bindings()) {
          bool to_queue = bd.dest.queue != nullptr;
          const std::string& dest = to_queue ? bd.dest.queue->name() : bd.dest.exchange->name();
          r.rows.push_back(binding_row(vhost, name, dest, to_queue, bd.routing_key, bd.arguments));
        }
      };
  // Queues' default bindings, then (after their last chunk) the exchanges' bindings.
  std::function<void(const broker::QueueRef&, ControlReply&)> default_row =
      [vhost](const broker::QueueRef& q, ControlReply& r) {
        if (!q->deleted())
          r.rows.push_back(binding_row(vhost, "", q->name(), true, q->name(), FieldTable{}));
      };
  auto queues = queue_snapshot(vh);
  // One sentinel item ends the queues' part and starts the exchanges' listing.
  queues->push_back(broker::QueueRef());
  chunked<broker::QueueRef>(reply, queues, 0,
                            [default_row, names, exchange_rows](const broker::QueueRef& q,
                                                                ControlReply& r) {
                              if (q.get() != nullptr) return default_row(q, r);
                              chunked<std::string>(r, names, 0, exchange_rows);
                            });
}

std::vector<broker::ConnectionInfo> connection_infos(ControlContext& ctx) {
  std::vector<broker::ConnectionInfo> out;
  for (const auto& [key, c] : ctx.broker.connections()) out.push_back(c->info());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

// The columns every connection listing has.
json::object connection_row(const broker::ConnectionInfo& c) {
  json::object o;
  o["user"] = c.user;
  o["vhost"] = c.vhost;
  o["peer_host"] = c.peer_host;
  o["peer_port"] = c.peer_port;
  o["host"] = c.host;
  o["port"] = c.port;
  o["state"] = c.state;
  o["ssl"] = c.ssl;
  o["timeout"] = c.heartbeat;
  return o;
}

void list_connections(ControlContext& ctx, ControlReply& reply) {
  for (const broker::ConnectionInfo& c : connection_infos(ctx)) {
    if (c.id == 0) continue;
    json::object o = connection_row(c);
    o["pid"] = connection_pid(ctx, c.id);
    o["name"] = connection_name(c);
    o["channels"] = c.channels.size();
    o["channel_max"] = c.channel_max;
    o["frame_max"] = c.frame_max;
    // rabbitmqctl's rendering of the protocol: {0,9,1} for AMQP, {'MQTT',"3.1.1"} for MQTT.
    if (c.protocol == "AMQP 0-9-1") {
      o["protocol"] = "{0,9,1}";
    } else {
      const size_t space = c.protocol.find(' ');
      o["protocol"] = "{'" + c.protocol.substr(0, space) + "',\"" + c.protocol.substr(space + 1) + "\"}";
    }
    o["type"] = "network";
    o["auth_mechanism"] = c.auth_mechanism;
    json::object props;
    if (!c.client_name.empty()) props["connection_name"] = c.client_name;
    o["client_properties"] = std::move(props);
    o["connection_name"] = c.client_name;
    reply.rows.push_back(std::move(o));
  }
}

// rabbitmqctl list_mqtt_connections / list_stomp_connections: the connections of one protocol
// ("MQTT" matches "MQTT 3.1.1" and "Web MQTT 3.1.1").
void list_protocol_connections(ControlContext& ctx, std::string_view protocol,
                               ControlReply& reply) {
  for (const broker::ConnectionInfo& c : connection_infos(ctx)) {
    if (c.id == 0 || c.protocol.find(protocol) == std::string::npos) continue;
    json::object o = connection_row(c);
    if (protocol == "MQTT") o["client_id"] = c.client_name;
    o["conn_name"] = connection_name(c);
    o["protocol"] = c.protocol;
    reply.rows.push_back(std::move(o));
  }
}

void list_channels(ControlContext& ctx, ControlReply& reply) {
  for (const broker::ConnectionInfo& c : connection_infos(ctx)) {
    std::vector<broker::ChannelInfo> chans = c.channels;
    std::sort(chans.begin(), chans.end(),
              [](const auto& a, const auto& b) { return a.number < b.number; });
    for (const broker::ChannelInfo& ch : chans) {
      json::object o;
      o["pid"] = channel_pid(ctx, c.id, ch.number);
      o["connection"] = connection_pid(ctx, c.id);
      o["name"] = connection_name(c) + " (" + std::to_string(ch.number) + ")";
      o["number"] = ch.number;
      o["user"] = c.user;
      o["vhost"] = c.vhost;
      o["transactional"] = ch.transactional;
      o["confirm"] = ch.confirm;
      o["consumer_count"] = ch.consumer_count;
      o["messages_unacknowledged"] = ch.messages_unacknowledged;
      o["messages_unconfirmed"] = 0;
      o["messages_uncommitted"] = 0;
      o["acks_uncommitted"] = 0;
      o["prefetch_count"] = ch.prefetch_count;
      o["global_prefetch_count"] = 0;
      reply.rows.push_back(std::move(o));
    }
  }
}

void list_consumers(ControlContext& ctx, broker::VHost* vh, ControlReply& reply) {
  // Channel pids by delivery sink, taken now; a consumer whose channel went since shows none.
  auto pids = std::make_shared<std::unordered_map<const void*, std::string>>();
  for (const broker::ConnectionInfo& c : connection_infos(ctx))
    for (const broker::ChannelInfo& ch : c.channels)
      (*pids)[ch.sink] = channel_pid(ctx, c.id, ch.number);
  auto queues = std::make_shared<std::vector<broker::QueueRef>>();
  for (const auto& [name, q] : vh->queues())
    if (q->consumer_count() > 0) queues->push_back(q);
  std::function<void(const broker::QueueRef&, ControlReply&)> row =
      [pids](const broker::QueueRef& ref, ControlReply& r) {
    const broker::Queue* q = ref.get();
    if (q->deleted()) return;
    const broker::Consumer* active = q->single_active_consumer();
    bool sac = q->settings().single_active_consumer;
    for (const broker::Consumer* c : q->consumers()) {
      json::object o;
      o["queue_name"] = q->name();
      auto it = pids->find(static_cast<const void*>(c->sink));
      o["channel_pid"] = it != pids->end() ? it->second : "";
      o["consumer_tag"] = c->tag;
      o["ack_required"] = !c->no_ack;
      o["prefetch_count"] = c->prefetch;
      bool is_active = !sac || c == active;
      o["active"] = is_active;
      o["activity_status"] = sac ? (is_active ? "single_active" : "waiting") : "up";
      o["exclusive"] = c->exclusive;
      o["arguments"] = to_json(c->arguments);
      r.rows.push_back(std::move(o));
    }
  };
  chunked(reply, queues, 0, row);
}

broker::VHost* vhost_or_error(ControlContext& ctx, const json::object& req, ControlReply& reply) {
  std::string name = str(req, "vhost", "/");
  broker::VHost* vh = ctx.broker.find_vhost(name);
  if (vh == nullptr) reply.error("Virtual host '" + name + "' does not exist", 65);
  return vh;
}

}  // namespace

void run_control_verb(ControlContext& ctx, json::object& req, ControlReply& reply) {
  std::string verb = str(req, "verb");
  std::string vhost = str(req, "vhost", "/");
  if (verb == "ping" || verb == "await_startup") return reply.ok();
  if (verb == "list_queues" || verb == "list_exchanges" || verb == "list_bindings" ||
      verb == "list_consumers") {
    // As rabbitmqctl: listing an unknown vhost lists nothing.
    broker::VHost* vh = ctx.broker.find_vhost(vhost);
    if (vh == nullptr) return reply.ok();
    if (verb == "list_queues") return list_queues(ctx, vh, reply);
    if (verb == "list_exchanges") return list_exchanges(ctx, vh, reply);
    if (verb == "list_bindings") return list_bindings(ctx, vh, reply);
    return list_consumers(ctx, vh, reply);
  }
  if (verb == "list_connections") return list_connections(ctx, reply);
  if (verb == "list_mqtt_connections") return list_protocol_connections(ctx, "MQTT", reply);
  if (verb == "list_stomp_connections") return list_protocol_connections(ctx, "STOMP", reply);
  if (verb == "list_channels") return list_channels(ctx, reply);
  if (verb == "list_vhosts") {
    for (const std::string& name : ctx.broker.list_vhosts()) {
      json::object o;
      o["name"] = name;
      o["tracing"] = ctx.broker.tracing(name);
      o["cluster_state"] = json::object{{ctx.node_name, "running"}};
      reply.rows.push_back(std::move(o));
    }
    return;
  }
  if (verb == "list_users") {
    std::vector<const auth::User*> users;
    for (const auto& [name, u] : ctx.broker.users().all()) users.push_back(&u);
    std::sort(users.begin(), users.end(), [](auto a, auto b) { return a->name < b->name; });
    for (const auth::User* u : users) {
      json::array tags;
      for (const std::string& t : u->tags) tags.push_back(json::string(t));
      reply.rows.push_back(json::object{{"user", u->name}, {"tags", std::move(tags)}});
    }
    return;
  }
  if (verb == "purge_queue") {
    broker::VHost* vh = ctx.broker.find_vhost(vhost);
    if (vh == nullptr) return reply.error("not_found", 69);
    auto r = vh->purge_queue(str(req, "queue"), 0);
    // rabbitmqctl 3.10 prints "Error:\nnot_found" and exits 69 for a missing queue.
    if (!r) return reply.error(r.error().code == broker::ErrorCode::kNotFound ? "not_found"
                                                                                : r.error().text,
                               69);
    return reply.ok(std::to_string(*r));
  }
  if (verb == "delete_queue") {
    broker::VHost* vh = ctx.broker.find_vhost(vhost);
    if (vh == nullptr) return reply.error("Queue not found", 64);
    std::string name = str(req, "queue");
    broker::Queue* q = vh->find_queue(name);
    if (q == nullptr) return reply.error("Queue not found", 64);
    if (flag(req, "if_empty") && q->message_count() > 0)
      return reply.error("Queue is not empty", 65);
    if (flag(req, "if_unused") && q->consumer_count() > 0)
      return reply.error("Queue is in use", 65);
    // As an operator: exclusive queues of any connection may be deleted.
    auto r = vh->delete_queue(name, false, false, q->owner_connection());
    if (!r) return reply.error(r.error().text, 70);
    return reply.ok(std::to_string(*r));
  }
  if (verb == "close_connection") {
    std::string target = str(req, "connection");
    std::string reason = str(req, "reason");
    for (const auto& [key, c] : ctx.broker.connections()) {
      broker::ConnectionInfo i = c->info();
      if (i.id == 0) continue;
      if (target == connection_pid(ctx, i.id) || target == connection_name(i) ||
          target == std::to_string(i.id)) {
        std::shared_ptr<broker::ClientConnection> keep = c;  // closing may unregister it
        keep->close_by_operator(reason);
        return reply.ok();
      }
    }
    return reply.error("{:invalid_pid_syntax, \"" + target + "\"}", 69);
  }
  if (verb == "status") {
    json::object o;
    o["node"] = ctx.node_name;
    o["pid"] = static_cast<int64_t>(::getpid());
    o["version"] = "0.1.0";
    o["data_directory"] = ctx.data_dir;
    o["connections"] = ctx.broker.connection_count();
    size_t queues = 0;
    if (broker::VHost* vh = ctx.broker.find_vhost("/")) queues = vh->queues().size();
    o["queues"] = queues;
    json::array alarms;
    if (ctx.broker.memory_alarm()) alarms.push_back("memory");
    if (ctx.broker.disk_alarm()) alarms.push_back("disk");
    o["alarms"] = std::move(alarms);
    reply.rows.push_back(std::move(o));
    return;
  }
  if (verb == "stop") {
    // The same clean stop as SIGTERM (main.cc): connections closed with 320, journal synced.
    // warrenctl waits for this socket to close, which happens when the process exits.
    boost::asio::post(ctx.broker.io(), [] { ::kill(::getpid(), SIGTERM); });
    return reply.ok();
  }
  if (verb == "authenticate_user") {
    std::string user = str(req, "user");
    std::string password = str(req, "password");
    std::string prefix = "Error: failed to authenticate user \"" + user + "\"\nuser '" + user + "'";
    // rabbit_auth_backend_internal refuses a blank password before looking at the user.
    if (password.empty())
      return reply.error(prefix +
                             " attempted to log in with a blank password, which is prohibited by "
                             "the internal authN backend. To use TLS/x509 certificate-based "
                             "authentication, see the rabbitmq_auth_mechanism_ssl plugin and "
                             "configure the client to use the EXTERNAL authentication mechanism. "
                             "Alternatively change the password for the user to be non-blank.",
                         65);
    if (ctx.broker.users().authenticate(user, password) == nullptr)
      return reply.error(prefix + " - invalid credentials", 65);
    return reply.ok();
  }
  if (verb == "export_definitions" || verb == "import_definitions")
    return run_definitions_verb(ctx, req, reply);
  if (run_tenancy_verb(ctx, verb, req, reply)) return;
  if (run_topic_permission_verb(ctx, verb, req, reply)) return;
  if (run_global_parameter_verb(ctx, verb, req, reply)) return;
  if (run_policy_verb(ctx, verb, req, reply)) return;
  if (run_plugin_verb(ctx, verb, reply)) return;
  if (run_tracing_verb(ctx, verb, req, reply)) return;
  (void)vhost_or_error;
  reply.error("unknown verb " + verb, 64);
}

}  // namespace warren::server
