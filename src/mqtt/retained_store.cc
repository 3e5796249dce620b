#include "mqtt/retained_store.h"

#include <chrono>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "mqtt/topic.h"

namespace warren::mqtt {

namespace {

constexpr const char* kFileName = "mqtt_retained.db";

// synchronous = NORMAL under WAL: a commit is not fsynced (the WAL is, at checkpoints), so a
// retained PUBLISH costs the event loop a page write, not a disk flush.
constexpr const char* kSchema = R"sql(
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = NORMAL;
  CREATE TABLE IF NOT EXISTS retained (
    vhost TEXT NOT NULL,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    payload BLOB NOT NULL,
    properties BLOB NOT NULL DEFAULT x'',
    expires_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vhost, topic)
  );
)sql";

// A store written before MQTT 5.0 lacks the last two columns; adding one that exists fails
// harmlessly.
constexpr const char* kAddedColumns[] = {
    "ALTER TABLE retained ADD COLUMN properties BLOB NOT NULL DEFAULT x''",
    "ALTER TABLE retained ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0",
};

uint64_t wall_now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

void RetainedStore::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void RetainedStore::Closer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

RetainedStore::~RetainedStore() {
  upsert_.reset();
  erase_.reset();
}

Result<std::unique_ptr<RetainedStore>, std::string> RetainedStore::open(const std::string& dir) {
  std::unique_ptr<RetainedStore> store(new RetainedStore());  // private constructor
  if (dir.empty()) return store;
  const std::string path = (std::filesystem::path(dir) / kFileName).string();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  store->db_.reset(raw);
  if (rc != SQLITE_OK)
    return std::string(path + ": cannot open: " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  char* message = nullptr;
  if (sqlite3_exec(raw, kSchema, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string error = path + ": " + (message ? message : "cannot create the schema");
    sqlite3_free(message);
    return error;
  }
  for (const char* alter : kAddedColumns) sqlite3_exec(raw, alter, nullptr, nullptr, nullptr);
  std::string error;
  if (!store->prepare(&error)) return path + ": " + error;
  store->load();
  return store;
}

bool RetainedStore::prepare(std::string* error) {
  auto compile = [&](const char* sql, std::unique_ptr<sqlite3_stmt, Closer>* out) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr) != SQLITE_OK) {
      *error = sqlite3_errmsg(db_.get());
      return false;
    }
    out->reset(s);
    return true;
  };
  return compile("INSERT OR REPLACE INTO retained (vhost, topic, qos, payload, properties, "
                 "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                 &upsert_) &&
         compile("DELETE FROM retained WHERE vhost = ? AND topic = ?", &erase_);
}

void RetainedStore::load() {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_.get(),
                         "SELECT vhost, topic, qos, payload, properties, expires_at FROM retained",
                         -1, &s, nullptr) != SQLITE_OK)
    return;
  std::unique_ptr<sqlite3_stmt, Closer> select(s);
  while (sqlite3_step(s) == SQLITE_ROW) {
    auto text = [&](int col) {
      return std::string(reinterpret_cast<const char*>(sqlite3_column_blob(s, col)),
                         static_cast<size_t>(sqlite3_column_bytes(s, col)));
    };
    RetainedMessage m{static_cast<uint8_t>(sqlite3_column_int(s, 2)), text(3), text(4),
                      static_cast<uint64_t>(sqlite3_column_int64(s, 5))};
    by_vhost_[text(0)][text(1)] = std::move(m);
  }
}

void RetainedStore::retain(std::string_view vhost, std::string_view topic, uint8_t qos,
                           std::string_view payload, std::string_view properties,
                           uint64_t expires_at_ms) {
  if (payload.empty()) {
    auto v = by_vhost_.find(vhost);
    if (v != by_vhost_.end()) {
      if (auto t = v->second.find(topic); t != v->second.end()) v->second.erase(t);
      if (v->second.empty()) by_vhost_.erase(v);
    }
  } else {
    auto v = by_vhost_.find(vhost);
    if (v == by_vhost_.end()) v = by_vhost_.emplace(std::string(vhost), Topics{}).first;
    auto t = v->second.find(topic);
    if (t == v->second.end()) t = v->second.emplace(std::string(topic), RetainedMessage{}).first;
    t->second.qos = qos;
    t->second.payload.assign(payload);
    t->second.properties.assign(properties);
    t->second.expires_at_ms = expires_at_ms;
  }
  if (!db_) return;
  sqlite3_stmt* s = payload.empty() ? erase_.get() : upsert_.get();
  sqlite3_bind_text(s, 1, vhost.data(), static_cast<int>(vhost.size()), SQLITE_STATIC);
  sqlite3_bind_text(s, 2, topic.data(), static_cast<int>(topic.size()), SQLITE_STATIC);
  if (!payload.empty()) {
    sqlite3_bind_int(s, 3, qos);
    sqlite3_bind_blob(s, 4, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, properties.data(), static_cast<int>(properties.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, static_cast<sqlite3_int64>(expires_at_ms));
  }
  if (sqlite3_step(s) != SQLITE_DONE)
    spdlog::error("MQTT retained message for topic '{}' in vhost '{}' not stored: {}", topic,
                  vhost, sqlite3_errmsg(db_.get()));
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

void RetainedStore::for_each_match(
    std::string_view vhost, std::string_view filter,
    const std::function<void(const std::string&, const RetainedMessage&)>& f) const {
  auto v = by_vhost_.find(vhost);
  if (v == by_vhost_.end()) return;
  const uint64_t now = wall_now_ms();
  auto live = [&](const RetainedMessage& m) { return m.expires_at_ms == 0 || m.expires_at_ms > now; };
  // A filter without wildcards is one lookup; a wildcard looks at every retained topic.
  if (filter.find_first_of("+#") == std::string_view::npos) {
    if (auto t = v->second.find(filter); t != v->second.end() && live(t->second))
      f(t->first, t->second);
    return;
  }
  for (const auto& [topic, m] : v->second)
    if (live(m) && topic_matches(filter, topic)) f(topic, m);
}

size_t RetainedStore::size() const {
  size_t n = 0;
  for (const auto& [vhost, topics] : by_vhost_) n += topics.size();
  return n;
}

}  // namespace warren::mqtt
