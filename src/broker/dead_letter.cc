#include "broker/dead_letter.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

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

// rabbit_misc:sort_field_table: entries ordered by key, bytewise (lists:keysort, stable).
void sort_by_key(FieldTable& t) {
  std::stable_sort(t.entries.begin(), t.entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

// The (queue, reason) an x-death entry is about; a missing or non-string value counts as absent.
using DeathKey = std::pair<std::optional<std::string_view>, std::optional<std::string_view>>;

DeathKey death_key(const FieldTable& t) {
  auto get = [&](std::string_view k) -> std::optional<std::string_view> {
    const FieldValue* v = t.find(k);
    return v ? v->as_string() : std::nullopt;
  };
  return {get("queue"), get("reason")};
}

// rabbit_dead_letter:group_by_queue_and_reason (3.10): one entry per (queue, reason), the first
// of each, counted as the number of duplicates when it has no count; note that it returns them
// in reverse order (a fold that prepends), which RabbitMQ writes back as is.
std::vector<FieldTable> group_by_queue_and_reason(const FieldArray& deaths) {
  std::vector<FieldTable> tables;
  for (const FieldValue& d : deaths)
    if (const FieldTable* t = d.as_table()) tables.push_back(*t);
  if (tables.size() <= 1) return tables;
  std::vector<FieldTable> grouped;
  std::vector<DeathKey> seen;
  for (const FieldTable& t : tables) {
    DeathKey key = death_key(t);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    int64_t n = 0;
    const FieldTable* first = nullptr;
    for (const FieldTable& o : tables) {
      if (death_key(o) != key) continue;
      if (first == nullptr) first = &o;
      ++n;
    }
    FieldTable augmented = *first;
    if (augmented.find("count") == nullptr)
      augmented.entries.insert(augmented.entries.begin(), {"count", FieldValue(n)});
    grouped.insert(grouped.begin(), std::move(augmented));
  }
  return grouped;
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

  // The death being recorded, as RabbitMQ 3.10 writes it (rabbit_dead_letter:make_msg): the
  // routing keys are the publish's and the long strings of its CC header (RabbitMQ strips BCC
  // when a message is published).
  FieldArray routing_keys{FieldValue(std::string(m.routing_key()))};
  if (const FieldValue* cc = headers.find("CC"))
    if (const auto* arr = std::get_if<FieldArray>(&cc->v))
      for (const FieldValue& k : *arr)
        if (std::holds_alternative<std::string>(k.v)) routing_keys.push_back(k);
  FieldTable info;
  info.set("count", FieldValue(int64_t{1}));
  info.set("reason", FieldValue(std::string(why)));
  info.set("queue", FieldValue(std::string(queue)));
  info.set("time", FieldValue(Timestamp{now_seconds}));
  info.set("exchange", FieldValue(std::string(m.exchange())));
  info.set("routing-keys", FieldValue(std::move(routing_keys)));
  if (props.has_expiration())
    info.set("original-expiration", FieldValue(std::string(props.expiration)));

  FieldArray deaths;
  const FieldValue* xd = headers.find("x-death");
  const auto* existing = xd ? std::get_if<FieldArray>(&xd->v) : nullptr;
  if (xd == nullptr) {
    // The first death also gets top-level headers (rabbitmq-server#1332); its entry keeps the
    // order above.
    headers.set("x-first-death-reason", FieldValue(std::string(why)));
    headers.set("x-first-death-queue", FieldValue(std::string(queue)));
    headers.set("x-first-death-exchange", FieldValue(std::string(m.exchange())));
    deaths.push_back(FieldValue(std::move(info)));
  } else if (existing == nullptr) {
    // An x-death that is not an array (a client republished it as something else): reset.
    deaths.push_back(FieldValue(std::move(info)));
  } else {
    // One entry per (queue, reason): a repeated death counts up in its old entry (keeping its
    // time, exchange and routing keys), which moves to the front with its keys sorted; a new
    // one goes to the front, sorted too.
    DeathKey key{queue, why};
    FieldTable entry;
    bool found = false;
    FieldArray others;
    for (FieldTable& t : group_by_queue_and_reason(*existing)) {
      if (!found && death_key(t) == key) {
        entry = std::move(t);
        found = true;
      } else {
        others.push_back(FieldValue(std::move(t)));
      }
    }
    if (!found) {
      entry = std::move(info);
    } else if (const FieldValue* c = entry.find("count")) {
      entry.set("count", FieldValue(int64_t{c->as_int().value_or(0) + 1}));
    } else {
      entry.entries.insert(entry.entries.begin(), {"count", FieldValue(int64_t{1})});
    }
    sort_by_key(entry);
    deaths.push_back(FieldValue(std::move(entry)));
    for (FieldValue& o : others) deaths.push_back(std::move(o));
  }
  headers.set("x-death", FieldValue(std::move(deaths)));
  sort_by_key(headers);  // rabbit_misc:set_table_value sorts the table it sets a value in
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
    if (t == nullptr) return false;  // put there by a client: not a fully automatic loop
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
  if (reason != DeadLetterReason::kRejected) {
    request.accept = [](const void* dead, const Queue& q) {
      if (!is_death_cycle(*static_cast<const Message*>(dead), q.name())) return true;
      spdlog::debug("dead letter cycle through queue '{}' without a rejection: not routed there",
                    q.name());
      return false;
    };
    request.accept_context = request.message.get();
  }
  vhost.publish(request);
}

}  // namespace warren::broker
