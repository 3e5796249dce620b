#include "broker/dead_letter.h"

#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "broker/vhost.h"
#include "common/basic_properties.h"
#include "common/field_table.h"

namespace warren::broker {

namespace {

std::string_view string_field(const FieldTable& t, std::string_view key) {
  const FieldValue* v = t.find(key);
  if (v == nullptr) return {};
  return v->as_string().value_or(std::string_view{});
}

FieldTable properties_headers(const BasicProperties& p) {
  if (p.has_headers())
    if (auto t = decode_table(p.headers)) return std::move(*t);
  return {};
}

}  // namespace

std::string_view reason_name(DeadLetterReason reason) {
  switch (reason) {
    case DeadLetterReason::kRejected: return "rejected";
    case DeadLetterReason::kExpired: return "expired";
    case DeadLetterReason::kMaxLen: return "maxlen";
  }
  return "rejected";
}

MessageRef make_dead_letter(const Message& m, DeadLetterReason reason, std::string_view queue,
                            std::string_view dlx, const std::optional<std::string>& dlrk,
                            uint64_t now_seconds) {
  BasicProperties props;
  Reader r(m.raw_properties());
  if (!props.decode(r)) props = BasicProperties{};
  FieldTable headers = properties_headers(props);
  std::string_view why = reason_name(reason);

  // The death being recorded, as RabbitMQ 3.x writes it.
  FieldArray routing_keys{FieldValue(std::string(m.routing_key()))};
  if (const FieldValue* cc = headers.find("CC"))
    if (const auto* arr = std::get_if<FieldArray>(&cc->v))
      for (const FieldValue& k : *arr) routing_keys.push_back(k);
  FieldTable info;
  info.set("reason", FieldValue(std::string(why)));
  info.set("queue", FieldValue(std::string(queue)));
  info.set("time", FieldValue(Timestamp{now_seconds}));
  info.set("exchange", FieldValue(std::string(m.exchange())));
  info.set("routing-keys", FieldValue(std::move(routing_keys)));
  if (props.has_expiration())
    info.set("original-expiration", FieldValue(std::string(props.expiration)));

  FieldArray deaths;
  if (const FieldValue* xd = headers.find("x-death")) {
    if (const auto* arr = std::get_if<FieldArray>(&xd->v)) deaths = *arr;
  }
  if (deaths.empty()) {
    // The first death also gets top-level headers (rabbitmq-server#1332).
    headers.set("x-first-death-reason", FieldValue(std::string(why)));
    headers.set("x-first-death-queue", FieldValue(std::string(queue)));
    headers.set("x-first-death-exchange", FieldValue(std::string(m.exchange())));
  }
  // One entry per (queue, reason), most recent first; a repeated death moves its entry to the
  // front and counts it.
  FieldValue entry;
  bool found = false;
  for (auto it = deaths.begin(); it != deaths.end(); ++it) {
    const FieldTable* t = it->as_table();
    if (t == nullptr || string_field(*t, "queue") != queue || string_field(*t, "reason") != why)
      continue;
    FieldTable updated = *t;
    int64_t count = 0;
    if (const FieldValue* c = updated.find("count")) count = c->as_int().value_or(0);
    updated.set("count", FieldValue(int64_t{count + 1}));
    entry = FieldValue(std::move(updated));
    deaths.erase(it);
    found = true;
    break;
  }
  if (!found) {
    FieldTable first;
    first.set("count", FieldValue(int64_t{1}));
    for (auto& [k, v] : info.entries) first.set(k, v);
    entry = FieldValue(std::move(first));
  }
  deaths.insert(deaths.begin(), std::move(entry));
  headers.set("x-death", FieldValue(std::move(deaths)));
  if (dlrk) headers.entries.erase(
      std::remove_if(headers.entries.begin(), headers.entries.end(),
                     [](const auto& e) { return e.first == "CC"; }),
      headers.entries.end());

  std::string header_bytes = encode_table_body(headers);
  props.headers = header_bytes;
  props.flags |= BasicProperties::kFlagHeaders;
  props.flags &= static_cast<uint16_t>(~BasicProperties::kFlagExpiration);
  std::string raw;
  Writer w(raw);
  props.encode(w);

  std::string_view rk = dlrk ? std::string_view(*dlrk) : m.routing_key();
  MessageRef dead = Message::create(dlx, rk, raw, m.body_size());
  dead->append_body(m.body());
  dead->delivery_mode = m.delivery_mode;
  dead->priority = m.priority;
  return dead;
}

bool is_death_cycle(const Message& dead_letter, std::string_view queue) {
  BasicProperties props;
  Reader r(dead_letter.raw_properties());
  if (!props.decode(r)) return false;
  FieldTable headers = properties_headers(props);
  const FieldValue* xd = headers.find("x-death");
  const auto* deaths = xd ? std::get_if<FieldArray>(&xd->v) : nullptr;
  if (deaths == nullptr) return false;
  // From the most recent death back to the last one in `queue`: a cycle unless one of them was
  // a rejection (a consumer decided, so the loop is not automatic).
  for (const FieldValue& d : *deaths) {
    const FieldTable* t = d.as_table();
    if (t == nullptr) continue;
    if (string_field(*t, "reason") == "rejected") return false;
    if (string_field(*t, "queue") == queue) return true;
  }
  return false;
}

void dead_letter_publish(VHost& vhost, const Message& m, DeadLetterReason reason,
                         std::string_view queue, std::string_view dlx,
                         const std::optional<std::string>& dlrk) {
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  PublishRequest request;
  request.message = make_dead_letter(m, reason, queue, dlx, dlrk, now);
  const Message& dead = *request.message;
  std::function<bool(const Queue&)> accept;
  if (reason != DeadLetterReason::kRejected) {
    request.accept = [&dead](const Queue& q) {
      if (!is_death_cycle(dead, q.name())) return true;
      spdlog::debug("dead letter cycle through queue '{}' without a rejection: not routed there",
                    q.name());
      return false;
    };
  }
  vhost.publish(request);
}

}  // namespace warren::broker
