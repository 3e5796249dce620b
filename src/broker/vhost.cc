#include "broker/vhost.h"

#include "broker/stored.h"

#include "common/random_id.h"

#include "broker/firehose.h"
#include "broker/queue_arguments.h"

#include <random>

#include <spdlog/spdlog.h>

namespace warren::broker {
namespace {




std::string_view bool_text(bool b) { return b ? "true" : "false"; }

// An exchange type as RabbitMQ prints the atom (~p): "x-delayed-message" needs quotes, so its
// reply texts read ''x-delayed-message'' inside their own quotes.
std::string type_atom(std::string_view type) {
  constexpr std::string_view kAtomChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@";
  bool plain = !type.empty() && type[0] >= 'a' && type[0] <= 'z' &&
               type.find_first_not_of(kAtomChars) == std::string_view::npos;
  return plain ? std::string(type) : "'" + std::string(type) + "'";
}

// Queue arguments RabbitMQ compares on redeclare; other x-arguments are not compared.
constexpr std::string_view kComparedQueueArgs[] = {
    "x-expires",          "x-message-ttl",       "x-dead-letter-exchange",
    "x-dead-letter-routing-key", "x-max-length", "x-max-length-bytes",
    "x-max-in-memory-length", "x-max-in-memory-bytes", "x-max-priority",
    "x-overflow",         "x-queue-mode",        "x-queue-type",
    "x-single-active-consumer", "x-queue-master-locator", "x-queue-version",
};

std::string plain_value(const FieldValue& v) {
  if (auto s = v.as_string()) return std::string(*s);
  return to_string(v);
}

// Both sides present: 'a' and 'b'; one missing: "none" and "the value 'a' of type 'longstr'".
std::string describe(const FieldValue* v, bool other_missing) {
  if (v == nullptr) return "none";
  if (other_missing)
    return fmt::format("the value '{}' of type '{}'", plain_value(*v), rabbit_type_name(*v));
  return "'" + plain_value(*v) + "'";
}

// RabbitMQ treats an explicit x-queue-type of "classic" as equal to none.
bool is_default_queue_type(const FieldValue* v) {
  if (v == nullptr) return true;
  auto s = v->as_string();
  return s && *s == "classic";
}

}  // namespace

VHost::VHost(std::string name, DispatchScheduler* scheduler, store::MetadataStore* metadata,
             MessageJournal* journal)
    : name_(std::move(name)), scheduler_(scheduler), metadata_(metadata), journal_(journal) {
  Exchange::Options durable;
  durable.durable = true;
  default_exchange_ = add_exchange("", ExchangeType::kDirect, durable);
  add_exchange("amq.direct", ExchangeType::kDirect, durable);
  add_exchange("amq.fanout", ExchangeType::kFanout, durable);
  add_exchange("amq.topic", ExchangeType::kTopic, durable);
  add_exchange("amq.headers", ExchangeType::kHeaders, durable);
  add_exchange("amq.match", ExchangeType::kHeaders, durable);
  // The firehose's exchange, in every vhost whether traced or not (as rabbit_vhost declares it).
  Exchange::Options trace = durable;
  trace.internal = true;
  add_exchange(std::string(Firehose::kExchange), ExchangeType::kTopic, trace);
}

void VHost::start_tracing(std::string node) {
  firehose_ = std::make_unique<Firehose>(*this, std::move(node));
}

void VHost::stop_tracing() { firehose_.reset(); }

void VHost::add_queue(QueueRef q) {
  auto [it, added] = queues_.emplace(q->name(), std::move(q));
  if (added) queue_names_.insert(it->first);  // a view of the map's key: stable until erased
}

VHost::~VHost() {
  for (auto& [name, q] : queues_) q->mark_deleted();
}

Status VHost::persisted(const store::Status& s) { return stored(s); }

store::BindingRecord VHost::binding_record(std::string_view source, std::string_view dest,
                                           bool dest_is_queue, std::string_view key,
                                           const FieldTable& args) const {
  return store::BindingRecord{name_, std::string(source), std::string(dest), dest_is_queue,
                              std::string(key), args};
}

void VHost::restore(const store::Definitions& defs) {
  restore_policies(defs.policies);  // first: the objects restored below get them as created
  size_t exchanges = 0, queues = 0, bindings = 0;
  for (const store::ExchangeRecord& r : defs.exchanges) {
    if (r.vhost != name_ || find_exchange(r.name) != nullptr) continue;
    bool delayed = r.type == kDelayedExchangeType;
    std::optional<ExchangeType> type;
    if (!delayed) {
      type = parse_exchange_type(r.type);
    } else if (auto t = delayed_routing_type(r.arguments)) {
      type = *t;
    }
    if (!type) continue;
    Exchange::Options o{r.durable, r.auto_delete, r.internal, r.arguments};
    Exchange* x = add_exchange(r.name, *type, std::move(o));
    if (delayed) x->set_delay_store(DelayStore::create(this, x, r.durable, journal_, delay_timer_));
    ++exchanges;
  }
  for (const store::QueueRecord& r : defs.queues) {
    if (r.vhost != name_ || find_queue(r.name) != nullptr) continue;
    Queue::Options o{true, false, r.auto_delete, 0, r.arguments, r.id};
    QueueRef q = Queue::create(name_, r.name, std::move(o), scheduler_);
    q->set_journal(journal_);
    q->set_owner(this);
    q->count_into(&queue_totals_);
    if (!policies_.empty()) apply_policy(*q);
    add_queue(std::move(q));
    ++queues;
  }
  for (const store::BindingRecord& r : defs.bindings) {
    if (r.vhost != name_) continue;
    Exchange* source = find_exchange(r.source);
    Destination dest;
    if (r.destination_is_queue) {
      dest.queue = find_queue(r.destination);
    } else {
      dest.exchange = find_exchange(r.destination);
    }
    if (source == nullptr || (dest.queue == nullptr && dest.exchange == nullptr)) continue;
    std::string error;
    if (source->add_binding(dest, r.routing_key, r.arguments, &error)) ++bindings;
  }
  spdlog::info("vhost '{}': restored {} exchanges, {} queues, {} bindings", name_, exchanges, queues,
               bindings);
}

Exchange* VHost::add_exchange(std::string name, ExchangeType type, Exchange::Options options) {
  auto x = std::make_unique<Exchange>(name, type, std::move(options));
  Exchange* raw = x.get();
  if (!policies_.empty()) apply_policy(*raw);
  exchanges_.emplace(std::move(name), std::move(x));
  return raw;
}

Exchange* VHost::find_exchange(std::string_view name) {
  auto it = exchanges_.find(name);
  return it == exchanges_.end() ? nullptr : it->second.get();
}

Queue* VHost::find_queue(std::string_view name) {
  auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : it->second.get();
}

OpResult<Queue*> VHost::usable_queue(std::string_view name, uint64_t connection_id) {
  Queue* q = find_queue(name);
  if (q == nullptr) return make_error(ErrorCode::kNotFound, "no queue '{}' in vhost '{}'", name, name_);
  if (q->exclusive() && q->owner_connection() != connection_id)
    return make_error(ErrorCode::kResourceLocked,
                      "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could "
                      "be originally declared on another connection or the exclusive property "
                      "value does not match that of the original declaration.",
                      name, name_);
  return q;
}

Status VHost::declare_exchange(const ExchangeDeclare& d) {
  if (d.name.empty())
    return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  Exchange* x = find_exchange(d.name);
  if (d.passive) {
    if (x == nullptr) return make_error(ErrorCode::kNotFound, "no exchange '{}' in vhost '{}'", d.name, name_);
    return std::nullopt;
  }
  bool delayed = d.type == kDelayedExchangeType;
  auto type = delayed ? std::optional(ExchangeType::kDirect) : parse_exchange_type(d.type);
  if (!type) {
    Error e = make_error(ErrorCode::kCommandInvalid, "unknown exchange type '{}'", d.type);
    return e;
  }
  if (x == nullptr) {
    if (d.name.starts_with("amq."))
      return make_error(ErrorCode::kAccessRefused, "exchange name '{}' contains reserved prefix 'amq.*'", d.name);
    if (delayed) {
      auto routing = delayed_routing_type(d.arguments);
      if (!routing) return routing.error();
      type = *routing;
    }
    if (metadata_ != nullptr && d.durable) {
      store::ExchangeRecord r{name_, std::string(d.name), std::string(d.type), d.durable,
                              d.auto_delete, d.internal, d.arguments};
      if (Status s = persisted(metadata_->save_exchange(r))) return s;
    }
    Exchange::Options o{d.durable, d.auto_delete, d.internal, d.arguments};
    Exchange* added = add_exchange(std::string(d.name), *type, std::move(o));
    if (delayed)
      added->set_delay_store(DelayStore::create(this, added, d.durable, journal_, delay_timer_));
    return std::nullopt;
  }
  auto inequivalent = [&](std::string_view arg, std::string_view got, std::string_view cur) {
    return make_error(ErrorCode::kPreconditionFailed,
                      "inequivalent arg '{}' for exchange '{}' in vhost '{}': received '{}' but "
                      "current is '{}'",
                      arg, d.name, name_, got, cur);
  };
  if (x->type_name() != d.type)
    return inequivalent("type", type_atom(d.type), type_atom(x->type_name()));
  if (x->options().durable != d.durable)
    return inequivalent("durable", bool_text(d.durable), bool_text(x->options().durable));
  if (x->options().auto_delete != d.auto_delete)
    return inequivalent("auto_delete", bool_text(d.auto_delete),
                        bool_text(x->options().auto_delete));
  if (x->options().internal != d.internal)
    return inequivalent("internal", bool_text(d.internal), bool_text(x->options().internal));
  const FieldValue* got_ae = d.arguments.find("alternate-exchange");
  const FieldValue* cur_ae = x->options().arguments.find("alternate-exchange");
  if ((got_ae == nullptr) != (cur_ae == nullptr) || (got_ae && !(*got_ae == *cur_ae)))
    return make_error(ErrorCode::kPreconditionFailed,
                      "inequivalent arg 'alternate-exchange' for exchange '{}' in vhost '{}': "
                      "received {} but current is {}",
                      d.name, name_, describe(got_ae, cur_ae == nullptr),
                      describe(cur_ae, got_ae == nullptr));
  return std::nullopt;
}

Status VHost::delete_exchange(std::string_view name, bool if_unused) {
  if (name.empty()) return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  if (name.starts_with("amq."))
    return make_error(ErrorCode::kAccessRefused, "deletion of system exchange '{}' in vhost '{}' not allowed", name,
                      name_);
  auto it = exchanges_.find(name);
  if (it == exchanges_.end()) return std::nullopt;  // RabbitMQ: deleting a missing exchange is ok
  Exchange* x = it->second.get();
  if (if_unused && x->has_bindings())
    return make_error(ErrorCode::kPreconditionFailed, "exchange '{}' in vhost '{}' in use", name, name_);
  // The store drops the exchange's bindings (either direction) with it.
  if (metadata_ != nullptr && x->options().durable)
    if (Status s = persisted(metadata_->delete_exchange(name_, std::string(name)))) return s;
  if (DelayStore* delayed = x->delay_store()) delayed->discard_all();
  std::unique_ptr<Exchange> owned = std::move(it->second);
  exchanges_.erase(it);
  // Bindings where this exchange is the destination go with it.
  std::vector<std::string> sources;
  for (auto& [n, other] : exchanges_)
    if (other->remove_bindings_to(Destination{nullptr, x}) > 0) sources.push_back(n);
  auto_delete_unused(sources);
  return std::nullopt;
}

void VHost::auto_delete_unused(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    Exchange* x = find_exchange(name);
    if (x != nullptr && x->options().auto_delete && !x->has_bindings()) delete_exchange(name, false);
  }
}

std::string VHost::generate_queue_name() {
  while (true) {
    std::string name = random_id("amq.gen-");
    if (find_queue(name) == nullptr) return name;
  }
}

OpResult<QueueDeclareOk> VHost::declare_queue(const QueueDeclare& declared,
                                              uint64_t connection_id) {
  QueueDeclare d = declared;
  d.durable = d.durable && !d.exclusive;  // as RabbitMQ: an exclusive queue is never durable
  if (d.passive) {
    auto q = usable_queue(d.name, connection_id);
    if (!q) return q.error();
    (*q)->touch();
    return QueueDeclareOk{(*q)->name(), static_cast<uint32_t>((*q)->message_count()),
                          static_cast<uint32_t>((*q)->consumer_count())};
  }
  std::string name(d.name);
  if (name.empty()) {
    name = generate_queue_name();
  } else if (name.starts_with("amq.") && !d.server_named) {
    return make_error(ErrorCode::kAccessRefused, "queue name '{}' contains reserved prefix 'amq.*'", name);
  }
  if (Queue* q = find_queue(name)) {
    uint64_t owner = d.exclusive ? connection_id : 0;
    if (q->owner_connection() != owner)
      return make_error(ErrorCode::kResourceLocked,
                        "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It "
                        "could be originally declared on another connection or the exclusive "
                        "property value does not match that of the original declaration.",
                        name, name_);
    auto inequivalent = [&](std::string_view arg, bool got, bool cur) {
      return make_error(ErrorCode::kPreconditionFailed,
                        "inequivalent arg '{}' for queue '{}' in vhost '{}': received '{}' but "
                        "current is '{}'",
                        arg, name, name_, bool_text(got), bool_text(cur));
    };
    if (q->durable() != d.durable) return inequivalent("durable", d.durable, q->durable());
    if (q->auto_delete() != d.auto_delete)
      return inequivalent("auto_delete", d.auto_delete, q->auto_delete());
    for (std::string_view key : kComparedQueueArgs) {
      const FieldValue* got = d.arguments.find(key);
      const FieldValue* cur = q->options().arguments.find(key);
      bool same = (got == nullptr && cur == nullptr) ||
                  (key == "x-queue-type" && is_default_queue_type(got) &&
                   is_default_queue_type(cur)) ||
                  (got && cur && (got->as_int() && cur->as_int() ? *got->as_int() == *cur->as_int()
                                                                 : *got == *cur));
      if (!same)
        return make_error(ErrorCode::kPreconditionFailed,
                          "inequivalent arg '{}' for queue '{}' in vhost '{}': received {} but "
                          "current is {}",
                          key, name, name_, describe(got, cur == nullptr),
                          describe(cur, got == nullptr));
    }
    q->touch();
    return QueueDeclareOk{name, static_cast<uint32_t>(q->message_count()),
                          static_cast<uint32_t>(q->consumer_count())};
  }
  if (Status invalid = validate_queue_arguments(d.arguments, name, name_)) return *invalid;
  if (max_queues >= 0 && queues_.size() >= static_cast<size_t>(max_queues))
    return make_error(ErrorCode::kPreconditionFailed,
                      "cannot declare queue '{}': queue limit in vhost '{}' ({}) is reached", name,
                      name_, max_queues);
  Queue::Options o{d.durable, d.exclusive, d.auto_delete, d.exclusive ? connection_id : 0,
                   d.arguments, 0};
  if (metadata_ != nullptr && d.durable) {
    auto id = metadata_->save_queue(store::QueueRecord{name_, name, true, d.auto_delete,
                                                       d.arguments, 0});
    if (!id) return *persisted(id.error());
    o.store_id = *id;
  }
  QueueRef q = Queue::create(name_, name, std::move(o), scheduler_);
  q->set_journal(journal_);
  q->set_owner(this);
  q->count_into(&queue_totals_);
  if (!policies_.empty()) apply_policy(*q);
  add_queue(q);
  // Every queue is bound to the default exchange by its name; that binding is implicit (routing
  // to "" looks the queue up by name) and cannot be changed.
  return QueueDeclareOk{name, 0, 0};
}

void VHost::remove_queue(Queue* q) {
  QueueRef keep(q);
  auto it = queues_.find(q->name());
  if (it == queues_.end() || it->second.get() != q) return;
  if (metadata_ != nullptr && q->durable()) {
    // The queue goes either way (RabbitMQ cannot refuse a delete either); a failed write is
    // logged and the stale record is dropped at the next start if the queue is declared again.
    if (store::Status s = metadata_->delete_queue(name_, q->name()))
      spdlog::error("vhost '{}': cannot delete queue '{}' from the metadata store: {}", name_,
                    q->name(), s->message);
  }
  q->mark_deleted();
  std::vector<std::string> sources;
  for (auto& [n, x] : exchanges_)
    if (x->remove_bindings_to(Destination{q, nullptr}) > 0) sources.push_back(n);
  std::vector<Consumer*> consumers = q->consumers();
  for (Consumer* c : consumers) {
    q->remove_consumer(c);
    c->sink->cancelled_by_broker(*c);
  }
  q->purge();
  queue_names_.erase(it->first);
  queues_.erase(it);
  auto_delete_unused(sources);
}

OpResult<uint32_t> VHost::delete_queue(std::string_view name, bool if_unused, bool if_empty,
                                       uint64_t connection_id) {
  Queue* q = find_queue(name);
  if (q == nullptr) return uint32_t{0};  // RabbitMQ: deleting a missing queue is ok
  auto usable = usable_queue(name, connection_id);
  if (!usable) return usable.error();
  // RabbitMQ checks emptiness before use.
  if (if_empty && q->message_count() > 0)
    return make_error(ErrorCode::kPreconditionFailed, "queue '{}' in vhost '{}' not empty", name, name_);
  if (if_unused && q->consumer_count() > 0)
    return make_error(ErrorCode::kPreconditionFailed, "queue '{}' in vhost '{}' in use", name, name_);
  uint32_t count = static_cast<uint32_t>(q->message_count());
  remove_queue(q);
  return count;
}

OpResult<uint32_t> VHost::purge_queue(std::string_view name, uint64_t connection_id) {
  auto q = usable_queue(name, connection_id);
  if (!q) return q.error();
  return static_cast<uint32_t>((*q)->purge());
}

Status VHost::bind_queue(std::string_view queue, std::string_view exchange, std::string_view key,
                         const FieldTable& args, uint64_t connection_id) {
  if (exchange.empty()) return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  // As RabbitMQ: the source is checked first, exclusivity once both ends exist.
  Exchange* x = find_exchange(exchange);
  if (x == nullptr) return make_error(ErrorCode::kNotFound, "no exchange '{}' in vhost '{}'", exchange, name_);
  auto q = usable_queue(queue, connection_id);
  if (!q) return q.error();
  std::string error;
  if (!x->add_binding(Destination{*q, nullptr}, key, args, &error)) {
    if (!error.empty()) return make_error(ErrorCode::kPreconditionFailed, "{}", error);
    return std::nullopt;  // already bound
  }
  // A binding is durable when both of its ends are.
  if (metadata_ != nullptr && x->options().durable && (*q)->durable()) {
    if (Status s = persisted(metadata_->save_binding(
            binding_record(exchange, queue, true, key, args)))) {
      x->remove_binding(Destination{*q, nullptr}, key, args);
      return s;
    }
  }
  return std::nullopt;
}

Status VHost::unbind_queue(std::string_view queue, std::string_view exchange, std::string_view key,
                           const FieldTable& args, uint64_t connection_id) {
  if (exchange.empty()) return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  // RabbitMQ answers unbind-ok when the binding, its queue or its exchange does not exist.
  Queue* existing = find_queue(queue);
  Exchange* x = find_exchange(exchange);
  if (existing == nullptr || x == nullptr) return std::nullopt;
  auto q = usable_queue(queue, connection_id);
  if (!q) return q.error();
  if (x->remove_binding(Destination{*q, nullptr}, key, args)) {
    if (metadata_ != nullptr && x->options().durable && (*q)->durable())
      if (Status s = persisted(metadata_->delete_binding(
              binding_record(exchange, queue, true, key, args))))
        spdlog::error("vhost '{}': {}", name_, s->text);
    auto_delete_unused({x->name()});
  }
  return std::nullopt;
}

Status VHost::bind_exchange(std::string_view dest, std::string_view source, std::string_view key,
                            const FieldTable& args) {
  if (dest.empty() || source.empty())
    return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  Exchange* s = find_exchange(source);
  if (s == nullptr) return make_error(ErrorCode::kNotFound, "no exchange '{}' in vhost '{}'", source, name_);
  Exchange* d = find_exchange(dest);
  if (d == nullptr) return make_error(ErrorCode::kNotFound, "no exchange '{}' in vhost '{}'", dest, name_);
  std::string error;
  if (!s->add_binding(Destination{nullptr, d}, key, args, &error)) {
    if (!error.empty()) return make_error(ErrorCode::kPreconditionFailed, "{}", error);
    return std::nullopt;  // already bound
  }
  if (metadata_ != nullptr && s->options().durable && d->options().durable) {
    if (Status st = persisted(metadata_->save_binding(
            binding_record(source, dest, false, key, args)))) {
      s->remove_binding(Destination{nullptr, d}, key, args);
      return st;
    }
  }
  return std::nullopt;
}

Status VHost::unbind_exchange(std::string_view dest, std::string_view source, std::string_view key,
                              const FieldTable& args) {
  if (dest.empty() || source.empty())
    return make_error(ErrorCode::kAccessRefused, "operation not permitted on the default exchange");
  // As for queues, unbinding something that does not exist is not an error.
  Exchange* d = find_exchange(dest);
  Exchange* s = find_exchange(source);
  if (d == nullptr || s == nullptr) return std::nullopt;
  if (s->remove_binding(Destination{nullptr, d}, key, args)) {
    if (metadata_ != nullptr && s->options().durable && d->options().durable)
      if (Status st = persisted(metadata_->delete_binding(
              binding_record(source, dest, false, key, args))))
        spdlog::error("vhost '{}': {}", name_, st->text);
    auto_delete_unused({s->name()});
  }
  return std::nullopt;
}

void VHost::connection_closed(uint64_t connection_id) {
  std::vector<Queue*> owned;
  for (auto& [name, q] : queues_)
    if (q->exclusive() && q->owner_connection() == connection_id) owned.push_back(q.get());
  for (Queue* q : owned) remove_queue(q);
}

void VHost::route_default(std::string_view routing_key, std::vector<Queue*>& out) {
  if (Queue* q = find_queue(routing_key)) out.push_back(q);
}

}  // namespace warren::broker
