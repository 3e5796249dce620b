// VHost's policies: set/clear/list, persistence, and re-resolving the settings of the queues and
// exchanges they apply to (policy.h; RabbitMQ's rabbit_policy:update_matched_objects).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "broker/queue_arguments.h"
#include "broker/vhost.h"
#include "store/metadata_store.h"

namespace warren::broker {

Status VHost::set_policy(Policy policy) {
  if (metadata_ != nullptr) {
    store::PolicyRecord r{name_, policy.name, policy.pattern,
                          std::string(apply_to_name(policy.apply_to)), policy.priority,
                          policy.definition_json};
    if (Status s = persisted(metadata_->save_policy(r))) return s;
  }
  auto it = std::find_if(policies_.begin(), policies_.end(),
                         [&](const Policy& p) { return p.name == policy.name; });
  if (it != policies_.end()) {
    *it = std::move(policy);
  } else {
    policies_.push_back(std::move(policy));
  }
  apply_policies();
  return std::nullopt;
}

Status VHost::clear_policy(std::string_view name) {
  auto it = std::find_if(policies_.begin(), policies_.end(),
                         [&](const Policy& p) { return p.name == name; });
  if (it == policies_.end()) return Error{ErrorCode::kNotFound, "Parameter does not exist"};
  if (metadata_ != nullptr)
    if (Status s = persisted(metadata_->delete_policy(name_, std::string(name)))) return s;
  policies_.erase(it);
  apply_policies();
  return std::nullopt;
}

void VHost::restore_policies(const std::vector<store::PolicyRecord>& records) {
  for (const store::PolicyRecord& r : records) {
    if (r.vhost != name_) continue;
    auto p = make_policy(r.name, r.pattern, r.definition, r.apply_to, r.priority);
    if (!p) {
      spdlog::error("vhost '{}': stored policy '{}' is invalid and not applied: {}", name_, r.name,
                    p.error().text);
      continue;
    }
    policies_.push_back(std::move(*p));
  }
  if (!policies_.empty()) {
    spdlog::info("vhost '{}': restored {} policies", name_, policies_.size());
    apply_policies();
  }
}

const Policy* VHost::policy_for_queue(std::string_view queue) const {
  return best_policy(policies_, queue, true);
}

const Policy* VHost::policy_for_exchange(std::string_view exchange) const {
  return best_policy(policies_, exchange, false);
}

Status VHost::set_queue_argument(Queue& q, std::string_view key, std::optional<FieldValue> value) {
  FieldTable args = q.options().arguments;
  std::erase_if(args.entries, [&](const auto& e) { return e.first == key; });
  if (value) args.entries.emplace_back(std::string(key), std::move(*value));
  if (Status invalid = validate_queue_arguments(args, q.name(), name_)) return invalid;
  if (metadata_ != nullptr && q.durable())
    if (auto saved = metadata_->save_queue(
            store::QueueRecord{name_, q.name(), true, q.auto_delete(), args, 0});
        !saved)
      return persisted(saved.error());
  q.set_arguments(std::move(args));
  apply_policy(q);
  return std::nullopt;
}

void VHost::apply_policy(Queue& q) {
  const Policy* p = policy_for_queue(q.name());
  q.apply_settings(QueueSettings::resolve(q.options().arguments, p ? &p->definition : nullptr));
}

void VHost::apply_policy(Exchange& x) {
  const Policy* p = policy_for_exchange(x.name());
  const std::string* ae = p && p->definition.alternate_exchange ? &*p->definition.alternate_exchange
                                                                 : nullptr;
  x.apply_policy_alternate_exchange(ae);
}

void VHost::apply_policies() {
  for (auto& [name, x] : exchanges_) apply_policy(*x);
  // Applying a lower length limit can dead-letter into this vhost (and so, in principle, route
  // to and drop from other queues): iterate over a snapshot that keeps each queue alive.
  std::vector<QueueRef> queues;
  queues.reserve(queues_.size());
  for (auto& [name, q] : queues_) queues.push_back(q);
  for (QueueRef& q : queues)
    if (!q->deleted()) apply_policy(*q);
}

}  // namespace warren::broker
