// Broker: topic permissions (broker.h, auth/topic_permissions.h). As the other access changes
// (broker_access.cc), each is written to the metadata store first, so a failed write changes
// nothing.
#include <spdlog/spdlog.h>

#include "broker/broker.h"
#include "broker/stored.h"
#include "store/metadata_store.h"

namespace warren::broker {

Status Broker::set_topic_permissions(const std::string& user, const std::string& vhost,
                                     const std::string& exchange, auth::TopicPermissionSet p) {
  if (users_.find(user) == nullptr)
    return make_error(ErrorCode::kNotFound, "no such user '{}'", user);
  if (find_vhost(vhost) == nullptr)
    return make_error(ErrorCode::kNotFound, "no such vhost '{}'", vhost);
  // Validate (compile) before saving, so the store never holds a pattern that cannot load.
  for (const std::string* pattern : {&p.write, &p.read})
    if (auto r = auth::ErlangRegex::compile(*pattern); std::holds_alternative<auth::RegexError>(r))
      return make_error(ErrorCode::kPreconditionFailed, "regular expression '{}' is invalid: {}",
                        *pattern, std::get<auth::RegexError>(r).message);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->save_topic_permission({user, vhost, exchange, p.write, p.read})))
      return s;
  access_.set_topic(user, vhost, exchange, std::move(p));
  return std::nullopt;
}

Status Broker::clear_topic_permissions(const std::string& user, const std::string& vhost,
                                       const std::string* exchange) {
  if (users_.find(user) == nullptr)
    return make_error(ErrorCode::kNotFound, "no such user '{}'", user);
  if (find_vhost(vhost) == nullptr)
    return make_error(ErrorCode::kNotFound, "no such vhost '{}'", vhost);
  if (metadata_ != nullptr)
    if (Status s = stored(metadata_->delete_topic_permissions(user, vhost, exchange))) return s;
  if (exchange == nullptr)
    access_.clear_topic(user, vhost);
  else
    access_.clear_topic(user, vhost, *exchange);
  return std::nullopt;
}

std::vector<auth::TopicPermissionEntry> Broker::list_topic_permissions() const {
  return access_.topics().list();
}

Status Broker::check_topic_access(std::string_view user, std::string_view vhost,
                                  std::string_view exchange, auth::Permission what,
                                  std::string_view routing_key,
                                  std::optional<std::string_view> client_id) const {
  if (access_.topics().permitted(exchange, what, routing_key, {user, vhost, client_id}))
    return std::nullopt;
  return make_error(ErrorCode::kAccessRefused,
                    "access to topic '{}' in exchange '{}' in vhost '{}' refused for user '{}'",
                    routing_key, exchange, vhost, user);
}

Status Broker::check_topic_access_on(const Exchange* x, std::string_view user,
                                     std::string_view vhost, auth::Permission what,
                                     std::string_view routing_key) const {
  // type_name(), not type(): a delayed exchange routing as topic is of type x-delayed-message.
  if (x == nullptr || x->type_name() != "topic") return std::nullopt;
  return check_topic_access(user, vhost, x->name(), what, routing_key);
}

}  // namespace warren::broker
