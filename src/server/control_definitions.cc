// Definitions export/import in RabbitMQ's JSON format (the file rabbitmqctl export_definitions
// writes): exchanges, queues and bindings today; users, vhosts and permissions are exported as
// the broker has them and not yet imported.
//
// Import applies kImportChunk objects per event-loop turn, each chunk in one metadata-store
// batch (one fsync): 10,000 durable queues take a few dozen fsyncs instead of 10,000, and AMQP
// traffic is served between chunks. A batch never spans turns, so no client's declare-ok is sent
// for a write that a later fsync has yet to make durable.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/control_json.h"
#include "server/control_server.h"
#include "store/metadata_store.h"

namespace warren::server {

namespace json = boost::json;

namespace {

constexpr size_t kImportChunk = 500;  // a few ms per loop turn with its fsync

bool is_default_exchange(std::string_view name) {
  return name.empty() || name.substr(0, 4) == "amq.";
}

// The export goes out in rows: first {"head": {...}} with everything but queues, exchanges and
// bindings, then {"queues"|"exchanges"|"bindings": [...]} rows, kExportChunk objects per loop
// turn; warrenctl assembles the file.
constexpr size_t kExportChunk = 500;

struct Export {
  // A snapshot: the queues (references: no allocation per queue), then the exchanges' names.
  std::vector<broker::QueueRef> queues;
  std::vector<std::string> exchanges;
  size_t next = 0;  // index into queues, then queues.size() + index into exchanges
  size_t size() const { return queues.size() + exchanges.size(); }
};

void export_chunk(ControlContext& ctx, std::shared_ptr<Export> ex, ControlReply& reply) {
  broker::VHost* vh = ctx.broker.find_vhost("/");
  json::array queues, exchanges, bindings;
  size_t end = std::min(ex->size(), ex->next + kExportChunk);
  for (; vh != nullptr && ex->next < end; ++ex->next) {
    if (ex->next < ex->queues.size()) {
      const broker::Queue* q = ex->queues[ex->next].get();
      if (q->deleted() || q->exclusive()) continue;
      queues.push_back(json::object{{"name", q->name()},
                                    {"vhost", vh->name()},
                                    {"durable", q->durable()},
                                    {"auto_delete", q->auto_delete()},
                                    {"type", "classic"},
                                    {"arguments", to_json(q->options().arguments)}});
      continue;
    }
    const std::string& name = ex->exchanges[ex->next - ex->queues.size()];
    broker::Exchange* x = vh->find_exchange(name);
    if (x == nullptr) continue;
    exchanges.push_back(json::object{{"name", name},
                                     {"vhost", vh->name()},
                                     {"type", std::string(x->type_name())},
                                     {"durable", x->options().durable},
                                     {"auto_delete", x->options().auto_delete},
                                     {"internal", x->options().internal},
                                     {"arguments", to_json(x->options().arguments)}});
    for (const broker::Binding& b : x->bindings()) {
      bool to_queue = b.dest.queue != nullptr;
      if (to_queue && b.dest.queue->exclusive()) continue;
      bindings.push_back(json::object{
          {"source", name},
          {"vhost", vh->name()},
          {"destination", to_queue ? b.dest.queue->name() : b.dest.exchange->name()},
          {"destination_type", to_queue ? "queue" : "exchange"},
          {"routing_key", b.routing_key},
          {"arguments", to_json(b.arguments)}});
    }
  }
  if (!queues.empty()) reply.rows.push_back(json::object{{"queues", std::move(queues)}});
  if (!exchanges.empty()) reply.rows.push_back(json::object{{"exchanges", std::move(exchanges)}});
  if (!bindings.empty()) reply.rows.push_back(json::object{{"bindings", std::move(bindings)}});
  if (ex->next < ex->size())
    reply.next = [&ctx, ex](ControlReply& r) { export_chunk(ctx, ex, r); };
}

void export_definitions(ControlContext& ctx, ControlReply& reply) {
  json::object d;
  d["rabbit_version"] = "3.10.8";
  d["rabbitmq_version"] = "3.10.8";
  d["product_name"] = "Warren";
  d["product_version"] = "0.1.0";
  json::array users;
  for (const auto& [name, u] : ctx.broker.users().all()) {
    json::array tags;
    for (const std::string& t : u.tags) tags.push_back(json::string(t));
    users.push_back(json::object{{"name", u.name},
                                 {"password_hash", u.password_hash},
                                 {"hashing_algorithm", "rabbit_password_hashing_sha256"},
                                 {"tags", std::move(tags)},
                                 {"limits", json::object()}});
  }
  d["users"] = std::move(users);
  json::array vhosts, permissions;
  auto ex = std::make_shared<Export>();
  broker::VHost* vh = ctx.broker.find_vhost("/");
  if (vh != nullptr) {
    vhosts.push_back(json::object{
        {"name", "/"},
        {"limits", json::array()},
        {"metadata", json::object{{"description", "Default virtual host"}, {"tags", json::array()}}}});
    // Today every user may do everything on the one vhost.
    for (const auto& [name, u] : ctx.broker.users().all())
      permissions.push_back(json::object{
          {"user", name}, {"vhost", "/"}, {"configure", ".*"}, {"write", ".*"}, {"read", ".*"}});
    ex->queues.reserve(vh->queues().size());
    for (const auto& [name, q] : vh->queues()) ex->queues.push_back(q);
    for (const auto& [name, x] : vh->exchanges())
      if (!is_default_exchange(name)) ex->exchanges.push_back(name);
  }
  d["vhosts"] = std::move(vhosts);
  d["permissions"] = std::move(permissions);
  d["topic_permissions"] = json::array();
  d["parameters"] = json::array();
  d["global_parameters"] = json::array();
  d["policies"] = json::array();
  d["queues"] = json::array();
  d["exchanges"] = json::array();
  d["bindings"] = json::array();
  reply.rows.push_back(json::object{{"head", std::move(d)}});
  export_chunk(ctx, ex, reply);
}

std::string str(const json::object& o, std::string_view key, std::string_view def = "") {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::string(def);
  return std::string(it->value().get_string());
}
bool boolean(const json::object& o, std::string_view key, bool def) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_bool()) return def;
  return it->value().get_bool();
}
json::value arguments(const json::object& o) {
  auto it = o.find("arguments");
  return it == o.end() ? json::value(json::object()) : it->value();
}

// One import: the definitions and how far it got (section 0 exchanges, 1 queues, 2 bindings).
struct Import {
  json::object defs;
  int section = 0;
  size_t index = 0;
  size_t applied = 0;
};

const char* kSections[] = {"exchanges", "queues", "bindings"};

// Applies one definition; an error text on failure.
std::optional<std::string> apply(ControlContext& ctx, int section, const json::object& o) {
  std::string vhost = str(o, "vhost", "/");
  broker::VHost* vh = ctx.broker.find_vhost(vhost);
  if (vh == nullptr) return "vhost '" + vhost + "' does not exist";
  broker::Status s;
  if (section == 0) {
    std::string name = str(o, "name"), type = str(o, "type", "direct");
    if (is_default_exchange(name)) return std::nullopt;  // as RabbitMQ: predeclared, skipped
    broker::ExchangeDeclare d;
    d.name = name;
    d.type = type;
    d.durable = boolean(o, "durable", true);
    d.auto_delete = boolean(o, "auto_delete", false);
    d.internal = boolean(o, "internal", false);
    d.arguments = table_from_json(arguments(o));
    s = vh->declare_exchange(d);
  } else if (section == 1) {
    std::string name = str(o, "name");
    broker::QueueDeclare d;
    d.name = name;
    d.durable = boolean(o, "durable", true);
    d.auto_delete = boolean(o, "auto_delete", false);
    d.arguments = table_from_json(arguments(o));
    auto r = vh->declare_queue(d, 0);
    if (!r) s = r.error();
  } else {
    std::string source = str(o, "source"), dest = str(o, "destination");
    std::string key = str(o, "routing_key");
    FieldTable args = table_from_json(arguments(o));
    if (str(o, "destination_type", "queue") == "queue")
      s = vh->bind_queue(dest, source, key, args, 0);
    else
      s = vh->bind_exchange(dest, source, key, args);
  }
  if (s) return std::string(broker::error_name(s->code)) + " - " + s->text;
  return std::nullopt;
}

void import_chunk(ControlContext& ctx, std::shared_ptr<Import> im, ControlReply& reply) {
  std::optional<store::MetadataStore::Batch> batch;
  if (store::MetadataStore* m = ctx.broker.metadata()) {
    auto b = m->begin();
    if (!b) return reply.error("cannot import: " + b.error().message, 70);
    batch.emplace(std::move(*b));
  }
  size_t done = 0;
  std::optional<std::string> failure;
  while (im->section < 3 && done < kImportChunk && !failure) {
    auto it = im->defs.find(kSections[im->section]);
    const json::array* list = it != im->defs.end() && it->value().is_array()
                                  ? &it->value().get_array() : nullptr;
    if (list == nullptr || im->index >= list->size()) {
      ++im->section;
      im->index = 0;
      continue;
    }
    const json::value& item = (*list)[im->index++];
    if (item.is_object()) failure = apply(ctx, im->section, item.as_object());
    ++done;
  }
  if (batch) {
    if (store::Status s = batch->commit())
      if (!failure) failure = "cannot save definitions: " + s->message;
  }
  if (failure) return reply.error(*failure, 65);
  im->applied += done;
  if (im->section < 3)
    reply.next = [&ctx, im](ControlReply& r) { import_chunk(ctx, im, r); };
  else
    reply.ok(std::to_string(im->applied));
}

}  // namespace

void run_definitions_verb(ControlContext& ctx, json::object& req, ControlReply& reply) {
  if (req.at("verb").as_string() == "export_definitions") return export_definitions(ctx, reply);
  auto it = req.find("definitions");
  if (it == req.end() || !it->value().is_object())
    return reply.error("definitions must be a JSON object", 65);
  auto im = std::make_shared<Import>();
  im->defs = std::move(it->value().get_object());
  import_chunk(ctx, im, reply);
}

}  // namespace warren::server
