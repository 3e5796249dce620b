#include "broker/definitions.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "broker/field_table_json.h"
#include "broker/policy.h"
#include "broker/queue.h"

namespace warren::broker {

namespace json = boost::json;

const char* const kDefinitionSections[kDefinitionSectionCount] = {
    "users",      "vhosts",   "permissions", "topic_permissions", "global_parameters",
    "parameters", "policies", "exchanges",   "queues",            "bindings"};

namespace {

// The default exchange and the amq.* ones every vhost predeclares: not exported or imported as
// exchanges (as RabbitMQ), though bindings from amq.* exchanges are (rabbit_binding:list_explicit
// leaves out only the default exchange's implicit ones).
bool is_default_exchange(std::string_view name) {
  return name.empty() || name.substr(0, 4) == "amq.";
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

std::string failed(const Status& s) {
  return std::string(error_name(s->code)) + " - " + s->text;
}

std::optional<std::string> apply_user(Broker& broker, const json::object& o) {
  std::string name = str(o, "name");
  std::string algorithm = str(o, "hashing_algorithm", "rabbit_password_hashing_sha256");
  if (algorithm != "rabbit_password_hashing_sha256")
    return "user '" + name + "': hashing algorithm '" + algorithm +
           "' is not supported (Warren verifies rabbit_password_hashing_sha256 hashes)";
  if (Status s =
          broker.put_user_with_hash(name, str(o, "password_hash"), string_list(o, "tags")))
    return failed(s);
  return std::nullopt;
}

std::optional<std::string> apply_limits(Broker& broker, const std::string& vhost,
                                        const json::object& value) {
  VHostLimits limits;
  for (const auto& [key, v] : value) {
    if (!v.is_int64()) return "vhost '" + vhost + "': limit " + std::string(key) +
                              " must be an integer";
    if (key == "max-connections") limits.max_connections = std::max<int64_t>(v.get_int64(), -1);
    else if (key == "max-queues") limits.max_queues = std::max<int64_t>(v.get_int64(), -1);
    else return "vhost '" + vhost + "': unknown limit " + std::string(key);
  }
  if (Status s = broker.set_vhost_limits(vhost, limits)) return failed(s);
  return std::nullopt;
}

}  // namespace

json::object export_head(Broker& broker, DefinitionsExport* snapshot) {
  json::object d;
  d["rabbit_version"] = "3.10.8";
  d["rabbitmq_version"] = "3.10.8";
  d["product_name"] = "Warren";
  d["product_version"] = "0.1.0";
  json::array users;
  for (const auth::User& u : broker.list_users()) {
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
  DefinitionsExport* ex = snapshot;
  for (const std::string& name : broker.list_vhosts()) {
    VHost* vh = broker.find_vhost(name);
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
    for (const UserPermissionEntry& p : broker.list_permissions(name))
      permissions.push_back(json::object{{"user", p.user},
                                         {"vhost", name},
                                         {"configure", p.permissions.configure},
                                         {"write", p.permissions.write},
                                         {"read", p.permissions.read}});
    for (const Policy& p : vh->policies())
      policies.push_back(json::object{{"vhost", name},
                                      {"name", p.name},
                                      {"pattern", p.pattern},
                                      {"apply-to", apply_to_name(p.apply_to)},
                                      {"definition", json::parse(p.definition_json)},
                                      {"priority", p.priority}});
    size_t index = ex->vhosts.size();
    ex->vhosts.push_back(name);
    for (const auto& [qname, q] : vh->queues()) ex->queues.emplace_back(index, q);
    for (const auto& [xname, x] : vh->exchanges())
      if (!xname.empty()) ex->exchanges.emplace_back(index, xname);
  }
  d["vhosts"] = std::move(vhosts);
  d["permissions"] = std::move(permissions);
  json::array topic_permissions;
  for (const auth::TopicPermissionEntry& p : broker.list_topic_permissions())
    topic_permissions.push_back(json::object{{"user", p.user},
                                             {"vhost", p.vhost},
                                             {"exchange", p.exchange},
                                             {"write", p.permissions.write},
                                             {"read", p.permissions.read}});
  d["topic_permissions"] = std::move(topic_permissions);
  d["parameters"] = std::move(parameters);
  // Only those set: Warren keeps no internal_cluster_id, and its cluster_name is not stored
  // until someone sets it (as RabbitMQ 3.10 stores cluster_name only once it is set).
  json::array global_parameters;
  for (const auto& [name, value] : broker.list_global_parameters())
    global_parameters.push_back(json::object{{"name", name}, {"value", value}});
  d["global_parameters"] = std::move(global_parameters);
  d["policies"] = std::move(policies);
  d["queues"] = json::array();
  d["exchanges"] = json::array();
  d["bindings"] = json::array();
  return d;
}


void export_some(Broker& broker, DefinitionsExport& snapshot, size_t max, json::array& queues,
                 json::array& exchanges, json::array& bindings) {
  DefinitionsExport* ex = &snapshot;
  size_t end = std::min(ex->size(), ex->next + max);
  for (; ex->next < end; ++ex->next) {
    if (ex->next < ex->queues.size()) {
      const auto& [vhost_index, queue] = ex->queues[ex->next];
      const Queue* q = queue.get();
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
    VHost* vh = broker.find_vhost(ex->vhosts[vhost_index]);
    Exchange* x = vh != nullptr ? vh->find_exchange(name) : nullptr;
    if (x == nullptr) continue;
    if (!is_default_exchange(name))
      exchanges.push_back(json::object{{"name", name},
                                       {"vhost", vh->name()},
                                       {"type", std::string(x->type_name())},
                                       {"durable", x->options().durable},
                                       {"auto_delete", x->options().auto_delete},
                                       {"internal", x->options().internal},
                                       {"arguments", to_json(x->options().arguments)}});
    for (const Binding& b : x->bindings()) {
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
}

// Applies one definition of a section; an error text on failure.
std::optional<std::string> import_definition(Broker& broker, int section, const json::object& o) {
  if (section == kDefUsers) return apply_user(broker, o);
  if (section == kDefVHosts) {
    if (Status s = broker.create_vhost(str(o, "name"))) return failed(s);
    return std::nullopt;
  }
  if (section == kDefGlobalParameters) {
    // rabbit_definitions:add_global_parameter: any name and value, replacing one already set.
    const json::value* name = o.if_contains("name");
    const json::value* value = o.if_contains("value");
    if (name == nullptr || !name->is_string()) return "a global parameter has no name";
    if (value == nullptr)
      return "global parameter '" + std::string(name->get_string()) + "' has no value";
    if (Status s = broker.set_global_parameter(std::string(name->get_string()), *value))
      return failed(s);
    return std::nullopt;
  }
  std::string vhost = str(o, "vhost", "/");
  VHost* vh = broker.find_vhost(vhost);
  if (vh == nullptr) return "vhost '" + vhost + "' does not exist";
  Status s;
  if (section == kDefPermissions) {
    s = broker.set_permissions(str(o, "user"), vhost,
                                   {str(o, "configure"), str(o, "write"), str(o, "read")});
  } else if (section == kDefTopicPermissions) {
    s = broker.set_topic_permissions(str(o, "user"), vhost, str(o, "exchange"),
                                     {str(o, "write"), str(o, "read")});
  } else if (section == kDefParameters) {
    std::string component = str(o, "component");
    auto value = o.find("value");
    if (component == "vhost-limits" && value != o.end() && value->value().is_object())
      return apply_limits(broker, vhost, value->value().get_object());
    spdlog::warn("definitions import: parameter '{}' of component '{}' in vhost '{}' skipped "
                 "(Warren has no such component)", str(o, "name"), component, vhost);
  } else if (section == kDefPolicies) {
    auto def = o.find("definition");
    int64_t priority = 0;
    if (auto it = o.find("priority"); it != o.end() && it->value().is_int64())
      priority = it->value().get_int64();
    auto policy = make_policy(
        str(o, "name"), str(o, "pattern"),
        def == o.end() ? std::string() : json::serialize(def->value()), str(o, "apply-to", "all"),
        priority);
    if (!policy) return "policy '" + str(o, "name") + "': " + policy.error().text;
    s = vh->set_policy(std::move(*policy));
  } else if (section == kDefExchanges) {
    std::string name = str(o, "name"), type = str(o, "type", "direct");
    if (is_default_exchange(name)) return std::nullopt;  // as RabbitMQ: predeclared, skipped
    ExchangeDeclare d;
    d.name = name;
    d.type = type;
    d.durable = boolean(o, "durable", true);
    d.auto_delete = boolean(o, "auto_delete", false);
    d.internal = boolean(o, "internal", false);
    d.arguments = table_from_json(arguments(o));
    s = vh->declare_exchange(d);
  } else if (section == kDefQueues) {
    std::string name = str(o, "name");
    QueueDeclare d;
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

}  // namespace warren::broker
