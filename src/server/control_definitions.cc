// Definitions export/import in RabbitMQ's JSON format (the file rabbitmqctl export_definitions
// writes): users (with their RabbitMQ SHA-256 password hashes), vhosts, permissions, vhost limits
// (parameters of component "vhost-limits"), policies, exchanges, queues and bindings of every
// vhost. Not imported: topic permissions and other runtime parameters (federation, shovels),
// which Warren does not have; they are skipped with a warning in the server's log.
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

#include <spdlog/spdlog.h>

#include "broker/policy.h"
#include "broker/field_table_json.h"
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
  // A snapshot: the queues (references: no allocation per queue), then the exchanges' names,
  // each with the index of its vhost's name (the vhost is looked up again per chunk: it may be
  // deleted meanwhile).
  std::vector<std::string> vhosts;
  std::vector<std::pair<size_t, broker::QueueRef>> queues;
  std::vector<std::pair<size_t, std::string>> exchanges;
  size_t next = 0;  // index into queues, then queues.size() + index into exchanges
  size_t size() const { return queues.size() + exchanges.size(); }
};

void export_chunk(ControlContext& ctx, std::shared_ptr<Export> ex, ControlReply& reply) {
  json::array queues, exchanges, bindings;
  size_t end = std::min(ex->size(), ex->next + kExportChunk);
  for (; ex->next < end; ++ex->next) {
    if (ex->next < ex->queues.size()) {
      const auto& [vhost_index, queue] = ex->queues[ex->next];
      const broker::Queue* q = queue.get();
      if (q->deleted() || q->exclusive()) continue;
      const std::string& vhost = ex->vhosts[vhost_index];
      queues.push_back(json::object{{"name", q->name()},
                                    {"vhost", vhost},
                                    {"durable", q->durable()},
                                    {"auto_delete", q->auto_delete()},
                                    {"type", "classic"},
                                    {"arguments", to_json(q->options().arguments)}});
      continue;
    }
    const auto& [vhost_index, name] = ex->exchanges[ex->next - ex->queues.size()];
    broker::VHost* vh = ctx.broker.find_vhost(ex->vhosts[vhost_index]);
    broker::Exchange* x = vh != nullptr ? vh->find_exchange(name) : nullptr;
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
  for (const auth::User& u : ctx.broker.list_users()) {
    json::array tags;
    for (const std::string& t : u.tags) tags.push_back(json::string(t));
    users.push_back(json::object{{"name", u.name},
                                 {"password_hash", u.password_hash},
                                 {"hashing_algorithm", "rabbit_password_hashing_sha256"},
                                 {"tags", std::move(tags)},
                                 {"limits", json::object()}});
  }
  d["users"] = std::move(users);
  json::array vhosts, permissions, parameters, policies;
  auto ex = std::make_shared<Export>();
  for (const std::string& name : ctx.broker.list_vhosts()) {
    broker::VHost* vh = ctx.broker.find_vhost(name);
    json::array limits_list;
    json::object limits;
    for (auto [key, value] : {std::pair{"max-connections", vh->max_connections},
                              std::pair{"max-queues", vh->max_queues}}) {
      if (value < 0) continue;
      limits_list.push_back(json::array{key, value});
      limits[key] = value;
    }
    vhosts.push_back(json::object{
        {"name", name},
        {"limits", std::move(limits_list)},
        {"metadata", json::object{{"description", name == "/" ? "Default virtual host" : ""},
                                  {"tags", json::array()}}}});
    if (!limits.empty())
      parameters.push_back(json::object{{"vhost", name},
                                        {"component", "vhost-limits"},
                                        {"name", "limits"},
                                        {"value", std::move(limits)}});
    for (const broker::UserPermissionEntry& p : ctx.broker.list_permissions(name))
      permissions.push_back(json::object{{"user", p.user},
                                         {"vhost", name},
                                         {"configure", p.permissions.configure},
                                         {"write", p.permissions.write},
                                         {"read", p.permissions.read}});
    for (const broker::Policy& p : vh->policies())
      policies.push_back(json::object{{"vhost", name},
                                      {"name", p.name},
                                      {"pattern", p.pattern},
                                      {"apply-to", broker::apply_to_name(p.apply_to)},
                                      {"definition", json::parse(p.definition_json)},
                                      {"priority", p.priority}});
    size_t index = ex->vhosts.size();
    ex->vhosts.push_back(name);
    for (const auto& [qname, q] : vh->queues()) ex->queues.emplace_back(index, q);
    for (const auto& [xname, x] : vh->exchanges())
      if (!is_default_exchange(xname)) ex->exchanges.emplace_back(index, xname);
  }
  d["vhosts"] = std::move(vhosts);
  d["permissions"] = std::move(permissions);
  d["topic_permissions"] = json::array();
  d["parameters"] = std::move(parameters);
  d["global_parameters"] = json::array();
  d["policies"] = std::move(policies);
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

// One import: the definitions and how far it got, section by section in RabbitMQ's order
// (rabbit_definitions: users, vhosts, permissions, parameters, policies, then the objects).
enum Section { kUsers, kVHosts, kPermissions, kParameters, kPolicies, kExchanges, kQueues,
               kBindings, kSectionCount };
const char* kSections[kSectionCount] = {"users",    "vhosts",    "permissions", "parameters",
                                        "policies", "exchanges", "queues",      "bindings"};

struct Import {
  json::object defs;
  int section = 0;
  size_t index = 0;
  size_t applied = 0;
};

std::vector<std::string> string_list(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end()) return out;
  if (it->value().is_array()) {
    for (const json::value& v : it->value().get_array())
      if (v.is_string()) out.emplace_back(v.get_string());
  } else if (it->value().is_string()) {  // before 3.9 tags were one comma-separated string
    std::string_view all = it->value().get_string();
    while (!all.empty()) {
      size_t comma = all.find(',');
      std::string_view t = all.substr(0, comma);
      if (!t.empty()) out.emplace_back(t);
      all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
    }
  }
  return out;
}

std::string failed(const broker::Status& s) {
  return std::string(broker::error_name(s->code)) + " - " + s->text;
}

std::optional<std::string> apply_user(ControlContext& ctx, const json::object& o) {
  std::string name = str(o, "name");
  std::string algorithm = str(o, "hashing_algorithm", "rabbit_password_hashing_sha256");
  if (algorithm != "rabbit_password_hashing_sha256")
    return "user '" + name + "': hashing algorithm '" + algorithm +
           "' is not supported (Warren verifies rabbit_password_hashing_sha256 hashes)";
  if (broker::Status s =
          ctx.broker.put_user_with_hash(name, str(o, "password_hash"), string_list(o, "tags")))
    return failed(s);
  return std::nullopt;
}

std::optional<std::string> apply_limits(ControlContext& ctx, const std::string& vhost,
                                        const json::object& value) {
  broker::VHostLimits limits;
  for (const auto& [key, v] : value) {
    if (!v.is_int64()) return "vhost '" + vhost + "': limit " + std::string(key) +
                              " must be an integer";
    if (key == "max-connections") limits.max_connections = std::max<int64_t>(v.get_int64(), -1);
    else if (key == "max-queues") limits.max_queues = std::max<int64_t>(v.get_int64(), -1);
    else return "vhost '" + vhost + "': unknown limit " + std::string(key);
  }
  if (broker::Status s = ctx.broker.set_vhost_limits(vhost, limits)) return failed(s);
  return std::nullopt;
}

// Applies one definition of a section; an error text on failure.
std::optional<std::string> apply(ControlContext& ctx, int section, const json::object& o) {
  if (section == kUsers) return apply_user(ctx, o);
  if (section == kVHosts) {
    if (broker::Status s = ctx.broker.create_vhost(str(o, "name"))) return failed(s);
    return std::nullopt;
  }
  std::string vhost = str(o, "vhost", "/");
  broker::VHost* vh = ctx.broker.find_vhost(vhost);
  if (vh == nullptr) return "vhost '" + vhost + "' does not exist";
  broker::Status s;
  if (section == kPermissions) {
    s = ctx.broker.set_permissions(str(o, "user"), vhost,
                                   {str(o, "configure"), str(o, "write"), str(o, "read")});
  } else if (section == kParameters) {
    std::string component = str(o, "component");
    auto value = o.find("value");
    if (component == "vhost-limits" && value != o.end() && value->value().is_object())
      return apply_limits(ctx, vhost, value->value().get_object());
    spdlog::warn("definitions import: parameter '{}' of component '{}' in vhost '{}' skipped "
                 "(Warren has no such component)", str(o, "name"), component, vhost);
  } else if (section == kPolicies) {
    auto def = o.find("definition");
    int64_t priority = 0;
    if (auto it = o.find("priority"); it != o.end() && it->value().is_int64())
      priority = it->value().get_int64();
    auto policy = broker::make_policy(
        str(o, "name"), str(o, "pattern"),
        def == o.end() ? std::string() : json::serialize(def->value()), str(o, "apply-to", "all"),
        priority);
    if (!policy) return "policy '" + str(o, "name") + "': " + policy.error().text;
    s = vh->set_policy(std::move(*policy));
  } else if (section == kExchanges) {
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
  } else if (section == kQueues) {
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
  if (s) return failed(s);
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
  while (im->section < kSectionCount && done < kImportChunk && !failure) {
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
  if (im->section < kSectionCount)
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
