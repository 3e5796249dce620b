// Broker: users, vhosts, permissions and limits (broker.h). Each change is written to the
// metadata store first, so a failed write changes nothing.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "broker/stored.h"
#include "store/metadata_store.h"

namespace warren::broker {
namespace {


Error no_such_user(std::string_view name) {
  return make_error(ErrorCode::kNotFound, "no such user '{}'", name);
}

Error no_such_vhost(std::string_view name) {
  return make_error(ErrorCode::kNotFound, "no such vhost '{}'", name);
}

}  // namespace

Status Broker::restore_access(const store::Definitions& definitions,
                              const DefaultAccess& defaults) {
  store::AccessDefinitions access;
  if (metadata_ != nullptr) {
    auto loaded = metadata_->load_access();
    if (!loaded) return stored(loaded.error());
    access = std::move(*loaded);
  }
  // First start (or a store from before users existed): RabbitMQ's default vhost and user
  // (rabbit:insert_default_data), created after the definitions are restored.
  const bool first_start = access.users.empty() && access.vhosts.empty();
  if (first_start) {
    access.vhosts.push_back({defaults.vhost, -1, -1});
    if (metadata_ != nullptr)
      if (Status s = stored(metadata_->save_vhost(access.vhosts.back()))) return s;
  }
  vhosts_.erase("/");  // created by the constructor; kept only if the store has it
  for (const store::VHostRecord& v : access.vhosts) {
    VHost& vh = add_vhost(v.name);
    vh.max_connections = v.max_connections;
    vh.max_queues = v.max_queues;
    vh.restore(definitions);
  }
  if (first_start) {
    if (Status s = add_user(defaults.user, defaults.pass, defaults.tags)) return s;
    return set_permissions(defaults.user, defaults.vhost, {".*", ".*", ".*"});
  }
  for (store::UserRecord& u : access.users)
    users_.put(auth::User{u.name, std::move(u.password_hash), std::move(u.tags)});
  for (const store::PermissionRecord& p : access.permissions) {
    if (auto bad = access_.set(p.user, p.vhost, {p.configure, p.write, p.read}))
      spdlog::warn("permissions of user '{}' in vhost '{}' ignored: regular expression '{}' is "
                   "invalid", p.user, p.vhost, bad->pattern);
  }
  for (store::TopicPermissionRecord& p : access.topic_permissions) {
    if (auto bad = access_.set_topic(p.user, p.vhost, p.exchange,
                                     {std::move(p.write), std::move(p.read)}))
      spdlog::warn("topic permissions of user '{}' in vhost '{}' on exchange '{}' ignored: "
                   "regular expression '{}' is invalid", p.user, p.vhost, p.exchange,
                   bad->pattern);
  }
  spdlog::info("restored {} users, {} vhosts, {} permissions, {} topic permissions",
               access.users.size(), access.vhosts.size(), access.permissions.size(),
               access.topic_permissions.size());
  return std::nullopt;
}

Status Broker::add_user(const std::string& name, std::string_view password,
                        std::vector<std::string> tags) {
  return add_user_with_hash(name, password.empty() ? "" : auth::hash_password_sha256(password),
                            std::move(tags));
}

Status Broker::add_user_with_hash(const std::string& name, std::string password_hash,
                                  std::vector<std::string> tags) {
  if (users_.find(name) != nullptr)
    return make_error(ErrorCode::kPreconditionFailed, "user '{}' already exists", name);
  auth::User u{name, std::move(password_hash), std::move(tags)};
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_user({u.name, u.password_hash, u.tags}))) return s;
  users_.put(std::move(u));
  return std::nullopt;
}

Status Broker::put_user_with_hash(const std::string& name, std::string password_hash,
                                  std::vector<std::string> tags) {
  auth::User u{name, std::move(password_hash), std::move(tags)};
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_user({u.name, u.password_hash, u.tags}))) return s;
  users_.put(std::move(u));
  return std::nullopt;
}

Status Broker::delete_user(const std::string& name) {
  if (users_.find(name) == nullptr) return no_such_user(name);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->delete_user(name))) return s;
  users_.remove(name);
  access_.clear_user(name);
  // As rabbit_connection_tracking: the user's open connections are closed.
  std::vector<std::shared_ptr<ClientConnection>> open;
  for (auto& [key, c] : connections_)
    if (c->user_name() == name) open.push_back(c);
  for (auto& c : open) c->force_close_with_text(fmt::format("user '{}' is deleted", name));
  return std::nullopt;
}

Status Broker::change_password(const std::string& name, std::string_view password) {
  auth::User* u = users_.find_mutable(name);
  if (u == nullptr) return no_such_user(name);
  std::string hash = password.empty() ? "" : auth::hash_password_sha256(password);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_user({u->name, hash, u->tags}))) return s;
  u->password_hash = std::move(hash);
  return std::nullopt;
}

Status Broker::clear_password(const std::string& name) { return change_password(name, ""); }

Status Broker::set_user_tags(const std::string& name, std::vector<std::string> tags) {
  auth::User* u = users_.find_mutable(name);
  if (u == nullptr) return no_such_user(name);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_user({u->name, u->password_hash, tags}))) return s;
  u->tags = std::move(tags);
  return std::nullopt;
}

std::vector<auth::User> Broker::list_users() const {
  std::vector<auth::User> out;
  for (const auto& [name, u] : users_.all()) out.push_back(u);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Status Broker::create_vhost(const std::string& name) {
  if (find_vhost(name) != nullptr) return std::nullopt;
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_vhost({name, -1, -1}))) return s;
  add_vhost(name);
  return std::nullopt;
}

Status Broker::delete_vhost(const std::string& name) {
  VHost* v = find_vhost(name);
  if (v == nullptr) return no_such_vhost(name);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->delete_vhost(name))) return s;
  // Its connections first: closing releases their channels, consumers and exclusive queues
  // while the vhost still exists.
  std::vector<std::shared_ptr<ClientConnection>> open;
  for (auto& [key, c] : connections_)
    if (c->vhost_name() == name) open.push_back(c);
  for (auto& c : open) c->force_close_with_text(fmt::format("vhost '{}' is deleted", name));
  // Deleting each queue also drops its persistent messages from the journal.
  std::vector<std::pair<std::string, uint64_t>> queues;
  for (const auto& [qname, q] : v->queues()) queues.emplace_back(qname, q->owner_connection());
  for (const auto& [qname, owner] : queues) (void)v->delete_queue(qname, false, false, owner);
  access_.clear_vhost(name);
  vhosts_.erase(name);
  return std::nullopt;
}

std::vector<std::string> Broker::list_vhosts() const {
  std::vector<std::string> out;
  for (const auto& [name, v] : vhosts_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

Status Broker::set_vhost_limits(const std::string& name, VHostLimits limits) {
  VHost* v = find_vhost(name);
  if (v == nullptr) return no_such_vhost(name);
  int64_t conns = limits.max_connections.value_or(v->max_connections);
  int64_t queues = limits.max_queues.value_or(v->max_queues);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_vhost({name, conns, queues}))) return s;
  v->max_connections = conns;
  v->max_queues = queues;
  return std::nullopt;
}

Status Broker::set_permissions(const std::string& user, const std::string& vhost,
                               auth::PermissionSet p) {
  if (users_.find(user) == nullptr) return no_such_user(user);
  if (find_vhost(vhost) == nullptr) return no_such_vhost(vhost);
  // Validate (compile) before saving, so the store never holds a pattern that cannot load.
  auth::AccessControl probe;
  if (auto bad = probe.set(user, vhost, p))
    return make_error(ErrorCode::kPreconditionFailed, "regular expression '{}' is invalid: {}",
                      bad->pattern, bad->error.message);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_permission({user, vhost, p.configure, p.write, p.read})))
      return s;
  access_.set(user, vhost, std::move(p));
  return std::nullopt;
}

Status Broker::clear_permissions(const std::string& user, const std::string& vhost) {
  if (users_.find(user) == nullptr) return no_such_user(user);
  if (find_vhost(vhost) == nullptr) return no_such_vhost(vhost);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->delete_permission(user, vhost))) return s;
  access_.clear(user, vhost);
  return std::nullopt;
}

std::vector<UserPermissionEntry> Broker::list_permissions(const std::string& vhost) const {
  std::vector<UserPermissionEntry> out;
  for (auto& [key, p] : access_.list())
    if (key.second == vhost) out.push_back({key.first, key.second, p});
  return out;
}

std::vector<UserPermissionEntry> Broker::list_user_permissions(const std::string& user) const {
  std::vector<UserPermissionEntry> out;
  for (auto& [key, p] : access_.list())
    if (key.first == user) out.push_back({key.first, key.second, p});
  return out;
}

Status Broker::check_access(std::string_view user, std::string_view vhost, auth::Permission what,
                            std::string_view kind, std::string_view name) const {
  if (kind == "exchange" && name.empty()) name = "amq.default";
  if (access_.permitted(user, vhost, what, name)) return std::nullopt;
  return make_error(ErrorCode::kAccessRefused, "access to {} '{}' in vhost '{}' refused for user '{}'",
                    kind, name, vhost, user);
}

}  // namespace warren::broker
