#include "store/metadata_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace warren::store {
namespace {

constexpr std::string_view kFileName = "metadata.db";

// kMigrations[i] brings a database from schema version i to i + 1. Append, never edit: a released
// migration has already run on someone's data.
constexpr std::array<std::string_view, 5> kMigrations = {
    // 1: exchanges, queues, bindings. Arguments are the AMQP encoding of the table body, so every
    // field type round-trips byte for byte. `position` orders rows as first saved; an upsert keeps
    // it. Queue ids use AUTOINCREMENT so an id is never handed out twice, even after a delete.
    R"sql(
      CREATE TABLE exchanges (
        position INTEGER PRIMARY KEY,
        vhost TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        durable INTEGER NOT NULL,
        auto_delete INTEGER NOT NULL,
        internal INTEGER NOT NULL,
        arguments BLOB NOT NULL,
        UNIQUE (vhost, name)
      ) STRICT;
      CREATE TABLE queues (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vhost TEXT NOT NULL,
        name TEXT NOT NULL,
        durable INTEGER NOT NULL,
        auto_delete INTEGER NOT NULL,
        arguments BLOB NOT NULL,
        UNIQUE (vhost, name)
      ) STRICT;
      CREATE TABLE bindings (
        position INTEGER PRIMARY KEY,
        vhost TEXT NOT NULL,
        source TEXT NOT NULL,
        destination TEXT NOT NULL,
        destination_is_queue INTEGER NOT NULL,
        routing_key TEXT NOT NULL,
        arguments BLOB NOT NULL,
        UNIQUE (vhost, source, destination, destination_is_queue, routing_key, arguments)
      ) STRICT;
      -- The unique index above finds bindings by source; this one finds them by destination
      -- when a queue or exchange is deleted.
      CREATE INDEX bindings_by_destination ON bindings (vhost, destination, destination_is_queue);
    )sql",
    // 2: users, vhosts, permissions (metadata_store.h documents the columns).
    R"sql(
      CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        tags TEXT NOT NULL
      ) STRICT;
      CREATE TABLE vhosts (
        name TEXT PRIMARY KEY,
        max_connections INTEGER NOT NULL DEFAULT -1,
        max_queues INTEGER NOT NULL DEFAULT -1
      ) STRICT;
      CREATE TABLE permissions (
        user TEXT NOT NULL,
        vhost TEXT NOT NULL,
        configure TEXT NOT NULL,
        write TEXT NOT NULL,
        read TEXT NOT NULL,
        PRIMARY KEY (user, vhost)
      ) STRICT;
    )sql",
    // 3: policies (PolicyRecord). The definition is JSON text, validated again when restored.
    R"sql(
      CREATE TABLE policies (
        position INTEGER PRIMARY KEY,
        vhost TEXT NOT NULL,
        name TEXT NOT NULL,
        pattern TEXT NOT NULL,
        apply_to TEXT NOT NULL,
        priority INTEGER NOT NULL,
        definition TEXT NOT NULL,
        UNIQUE (vhost, name)
      ) STRICT;
    )sql",
    // 4: topic permissions (TopicPermissionRecord).
    R"sql(
      CREATE TABLE topic_permissions (
        user TEXT NOT NULL,
        vhost TEXT NOT NULL,
        exchange TEXT NOT NULL,
        write TEXT NOT NULL,
        read TEXT NOT NULL,
        PRIMARY KEY (user, vhost, exchange)
      ) STRICT;
    )sql",
    // 5: global runtime parameters (GlobalParameterRecord). The value is JSON text.
    R"sql(
      CREATE TABLE global_parameters (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    )sql",
};

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// One execution of a prepared statement: binds parameters in order, steps, and resets the
// statement when it goes out of scope so it can be reused (and a SELECT releases its read).
class Run {
 public:
  explicit Run(sqlite3_stmt* s) : s_(s) {}
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  ~Run() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  Run& text(const std::string& v) {
    note(sqlite3_bind_text64(s_, ++param_, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Run& blob(const std::string& v) {
    // data() of a std::string is never null, so an empty table is a zero-length BLOB, not NULL.
    note(sqlite3_bind_blob64(s_, ++param_, v.data(), v.size(), SQLITE_TRANSIENT));
    return *this;
  }
  Run& integer(int64_t v) {
    note(sqlite3_bind_int64(s_, ++param_, v));
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE or an error code (including a failed bind).
  int step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }

  std::string column_text(int i) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }
  std::string column_blob(int i) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(s_, i));  // null when zero-length
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }
  int64_t column_int(int i) const { return sqlite3_column_int64(s_, i); }

 private:
  void note(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3_stmt* s_;
  int param_ = 0;
  int bind_rc_ = SQLITE_OK;
};

std::string describe(std::string_view kind, const std::string& vhost, const std::string& name) {
  return fmt::format("{} '{}' in vhost '{}'", kind, name, vhost);
}

std::string describe(const BindingRecord& b) {
  return fmt::format("binding '{}' -> {} '{}' (key '{}') in vhost '{}'", b.source,
                     b.destination_is_queue ? "queue" : "exchange", b.destination, b.routing_key,
                     b.vhost);
}

// Makes the directory entry of a newly created file durable; SQLite syncs the directory for its
// WAL file but not for the database file it creates.
bool sync_directory(const std::string& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && ::fsync(fd.get()) == 0;
}

}  // namespace

class MetadataStore::Database {
 public:
  static Result<std::unique_ptr<Database>> open(const std::string& dir);

  // Runs body as one transaction of its own, or as part of the open batch.
  template <class Body>
  Status write(std::string_view what, Body body);
  Status begin_batch();
  Status finish_batch(bool commit);
  Result<Definitions> load();
  // Policies are rare: their statements are prepared when used.
  Result<StatementHandle> prepare(const char* sql, std::string_view what) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db.get(), sql, -1, &raw, nullptr);
    StatementHandle stmt(raw);
    if (rc != SQLITE_OK) return fail(what, rc);
    return stmt;
  }
  Status load_policies(std::vector<PolicyRecord>& out) {
    auto stmt = prepare(
        "SELECT vhost, name, pattern, apply_to, priority, definition FROM policies "
        "ORDER BY position", "load policies");
    if (!stmt) return stmt.error();
    Run run(stmt->get());
    int rc;
    while ((rc = run.step()) == SQLITE_ROW) {
      PolicyRecord& p = out.emplace_back();
      p.vhost = run.column_text(0);
      p.name = run.column_text(1);
      p.pattern = run.column_text(2);
      p.apply_to = run.column_text(3);
      p.priority = run.column_int(4);
      p.definition = run.column_text(5);
    }
    return rc == SQLITE_DONE ? Status{} : fail("load policies", rc);
  }

  // Runs one rarely used statement (users, vhosts, permissions) with text and integer
  // parameters in order; prepared each time, as these change at operator speed.
  Status exec_sql(std::string_view what, const char* sql,
                  std::initializer_list<std::variant<std::string, int64_t>> params) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db.get(), sql, -1, &raw, nullptr);
    StatementHandle stmt(raw);
    if (rc != SQLITE_OK) return fail(what, rc);
    Run run(stmt.get());
    for (const auto& p : params) {
      if (const auto* t = std::get_if<std::string>(&p)) run.text(*t);
      else run.integer(std::get<int64_t>(p));
    }
    return expect_done(run, what);
  }
  Result<AccessDefinitions> load_access();

  // Steps a statement that returns no rows.
  Status expect_done(Run& run, std::string_view what) {
    int rc = run.step();
    return rc == SQLITE_DONE ? Status{} : fail(what, rc);
  }
  StoreError fail(std::string_view what, int rc) const {
    // After a failed step the connection's message is the precise one; a failed bind is not
    // recorded on the connection, so fall back to the generic text of its code.
    const char* detail =
        rc == sqlite3_extended_errcode(db.get()) ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    const bool damaged = (rc & 0xFF) == SQLITE_CORRUPT;  // low byte: the primary result code
    return StoreError{
        fmt::format("{}: {}: {}{}", path, what, damaged ? "database is damaged: " : "", detail)};
  }

  std::string path;
  SqliteHandle db;  // declared before the statements so it is closed after they are finalized

  StatementHandle begin, commit;
  StatementHandle save_exchange, delete_exchange;
  StatementHandle delete_bindings_by_source, delete_bindings_to_exchange;
  StatementHandle save_queue, delete_queue, delete_queue_bindings;
  StatementHandle save_binding, delete_binding;
  StatementHandle load_exchanges, load_queues, load_bindings;

  bool batch_open = false;
  Status batch_error;  // the first failed write of the open batch

 private:
  Status configure();
  Status check_integrity();
  Status migrate();
  Status prepare_statements();
  Status exec_script(std::string_view what, std::string_view sql);
  Status run_transaction(std::string_view what, const auto& body);
  // Some errors (I/O, disk full) make SQLite roll back by itself; otherwise the open
  // transaction is ended here so a failed write leaves nothing behind.
  void roll_back_if_open() {
    if (!sqlite3_get_autocommit(db.get())) exec_script("roll back", "ROLLBACK");
  }
  // The first column of the first row, as text or as an integer (0 when there is no row).
  Result<std::string> query_text(std::string_view what, const char* sql);
  Result<int64_t> query_int(std::string_view what, const char* sql);
  template <class T, class Column>
  Result<T> query_first(std::string_view what, const char* sql, Column column);
};

Status MetadataStore::Database::exec_script(std::string_view what, std::string_view sql) {
  const std::string text(sql);  // sqlite3_exec needs a terminated string
  char* message = nullptr;
  int rc = sqlite3_exec(db.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string detail = message ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return StoreError{fmt::format("{}: {}: {}", path, what, detail)};
}

template <class T, class Column>
Result<T> MetadataStore::Database::query_first(std::string_view what, const char* sql,
                                               Column column) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db.get(), sql, -1, &raw, nullptr);
  StatementHandle stmt(raw);
  if (rc != SQLITE_OK) return fail(what, rc);
  Run run(stmt.get());
  rc = run.step();
  if (rc == SQLITE_ROW) return column(run);
  if (rc == SQLITE_DONE) return T{};
  return fail(what, rc);
}

Result<std::string> MetadataStore::Database::query_text(std::string_view what, const char* sql) {
  return query_first<std::string>(what, sql, [](const Run& r) { return r.column_text(0); });
}

Result<int64_t> MetadataStore::Database::query_int(std::string_view what, const char* sql) {
  return query_first<int64_t>(what, sql, [](const Run& r) { return r.column_int(0); });
}

Status MetadataStore::Database::configure() {
  // Exclusive locking: the broker is the only user of its data directory, and in WAL mode this
  // keeps the WAL index in heap memory instead of a mapped -shm file.
  if (Status s = exec_script("set locking mode", "PRAGMA locking_mode = EXCLUSIVE")) return s;
  // The first read of the file happens here, so this is where a non-SQLite file is detected.
  auto mode = query_text("cannot open", "PRAGMA journal_mode = WAL");
  if (!mode) {
    if ((sqlite3_extended_errcode(db.get()) & 0xFF) == SQLITE_BUSY) {
      return StoreError{fmt::format(
          "{}: locked by another connection (is another Warren using this data directory?)", path)};
    }
    return mode.error();
  }
  if (*mode != "wal") {
    return StoreError{
        fmt::format("{}: could not switch to WAL journal mode (got '{}')", path, *mode)};
  }
  // FULL: the WAL is fsynced at every commit, so a returned write survives power loss, not just
  // a process crash. Foreign keys stay off; cascades are explicit statements in one transaction.
  // The WAL is cut back after checkpoints so one large import does not leave a large file.
  return exec_script("configure",
                     "PRAGMA synchronous = FULL;"
                     "PRAGMA foreign_keys = OFF;"
                     "PRAGMA journal_size_limit = 16777216;");
}

// quick_check reads every page and checks the b-tree structure (not index contents), so a
// damaged file is reported at startup rather than as a failure of some later declare.
Status MetadataStore::Database::check_integrity() {
  auto result = query_text("check integrity", "PRAGMA quick_check(1)");
  if (!result) return result.error();
  if (*result == "ok") return {};
  std::replace(result->begin(), result->end(), '\n', ' ');
  return StoreError{fmt::format("{}: database is damaged: {}", path, *result)};
}

Status MetadataStore::Database::run_transaction(std::string_view what, const auto& body) {
  if (Status s = exec_script(what, "BEGIN IMMEDIATE")) return s;
  if (Status s = body()) {
    roll_back_if_open();
    return s;
  }
  if (Status s = exec_script(what, "COMMIT")) {
    roll_back_if_open();
    return s;
  }
  return {};
}

Status MetadataStore::Database::migrate() {
  constexpr auto kLatest = static_cast<int64_t>(kMigrations.size());
  return run_transaction("migrate schema", [&]() -> Status {
    auto has_version_table = query_int(
        "read schema version",
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'");
    if (!has_version_table) return has_version_table.error();
    if (*has_version_table == 0) {
      auto tables = query_int("read schema", "SELECT count(*) FROM sqlite_schema");
      if (!tables) return tables.error();
      if (*tables != 0) {
        return StoreError{fmt::format(
            "{}: is an SQLite database but not a Warren metadata store (no schema_version table)",
            path)};
      }
      if (Status s = exec_script("create schema_version",
                                 "CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;"
                                 "INSERT INTO schema_version VALUES (0);")) {
        return s;
      }
    }
    auto version = query_int("read schema version", "SELECT version FROM schema_version");
    if (!version) return version.error();
    if (*version > kLatest) {
      return StoreError{fmt::format(
          "{}: schema version {} was written by a newer Warren (this one knows up to {})", path,
          *version, kLatest)};
    }
    for (int64_t v = *version; v < kLatest; ++v) {
      const std::string what = fmt::format("migrate schema to version {}", v + 1);
      if (Status s = exec_script(what, kMigrations[static_cast<size_t>(v)])) return s;
      if (Status s =
              exec_script(what, fmt::format("UPDATE schema_version SET version = {}", v + 1)))
        return s;
    }
    return {};
  });
}

Status MetadataStore::Database::prepare_statements() {
  const std::pair<StatementHandle*, const char*> statements[] = {
      {&begin, "BEGIN IMMEDIATE"},
      {&commit, "COMMIT"},
      {&save_exchange,
       "INSERT INTO exchanges (vhost, name, type, durable, auto_delete, internal, arguments) "
       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vhost, name) DO UPDATE SET "
       "type = excluded.type, durable = excluded.durable, auto_delete = excluded.auto_delete, "
       "internal = excluded.internal, arguments = excluded.arguments"},
      {&delete_exchange, "DELETE FROM exchanges WHERE vhost = ?1 AND name = ?2"},
      // Two statements rather than one with OR: SQLite would plan the OR as a scan of the
      // whole vhost's bindings instead of two index lookups.
      {&delete_bindings_by_source, "DELETE FROM bindings WHERE vhost = ?1 AND source = ?2"},
      {&delete_bindings_to_exchange,
       "DELETE FROM bindings WHERE vhost = ?1 AND destination = ?2 AND destination_is_queue = 0"},
      {&save_queue,
       "INSERT INTO queues (vhost, name, durable, auto_delete, arguments) VALUES (?, ?, ?, ?, ?) "
       "ON CONFLICT (vhost, name) DO UPDATE SET durable = excluded.durable, "
       "auto_delete = excluded.auto_delete, arguments = excluded.arguments RETURNING id"},
      {&delete_queue, "DELETE FROM queues WHERE vhost = ?1 AND name = ?2"},
      {&delete_queue_bindings,
       "DELETE FROM bindings WHERE vhost = ?1 AND destination = ?2 AND destination_is_queue = 1"},
      {&save_binding,
       "INSERT INTO bindings (vhost, source, destination, destination_is_queue, routing_key, "
       "arguments) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"},
      {&delete_binding,
       "DELETE FROM bindings WHERE vhost = ? AND source = ? AND destination = ? AND "
       "destination_is_queue = ? AND routing_key = ? AND arguments = ?"},
      {&load_exchanges,
       "SELECT vhost, name, type, durable, auto_delete, internal, arguments FROM exchanges "
       "ORDER BY position"},
      {&load_queues,
       "SELECT vhost, name, durable, auto_delete, arguments, id FROM queues ORDER BY id"},
      {&load_bindings,
       "SELECT vhost, source, destination, destination_is_queue, routing_key, arguments "
       "FROM bindings ORDER BY position"},
  };
  for (const auto& [handle, sql] : statements) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    handle->reset(raw);
    if (rc != SQLITE_OK) return fail(fmt::format("prepare \"{}\"", sql), rc);
  }
  return {};
}

Result<std::unique_ptr<MetadataStore::Database>> MetadataStore::Database::open(
    const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return StoreError{fmt::format("cannot create metadata directory {}: {}", dir, ec.message())};
  }

  auto database = std::make_unique<Database>();
  database->path = (std::filesystem::path(dir) / kFileName).string();
  const bool existed = std::filesystem::exists(database->path, ec);

  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(database->path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  database->db.reset(raw);  // even a failed open returns a handle that must be closed
  if (rc != SQLITE_OK) {
    const char* detail = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return StoreError{fmt::format("{}: cannot open: {}", database->path, detail)};
  }
  sqlite3_extended_result_codes(raw, 1);

  Database& d = *database;
  for (auto step : {&Database::configure, &Database::check_integrity, &Database::migrate,
                    &Database::prepare_statements}) {
    if (Status s = (d.*step)()) return *s;
  }
  if (!existed && !sync_directory(dir)) {
    return StoreError{fmt::format("{}: cannot fsync directory {}", database->path, dir)};
  }
  return database;
}

template <class Body>
Status MetadataStore::Database::write(std::string_view what, Body body) {
  if (batch_open) {
    if (batch_error) {
      return StoreError{
          fmt::format("{}: {}: not applied, an earlier write of this batch failed ({})", path, what,
                      batch_error->message)};
    }
    Status s = body();
    if (s) batch_error = s;
    return s;
  }
  {
    Run run(begin.get());
    if (Status s = expect_done(run, what)) return s;
  }
  if (Status s = body()) {
    roll_back_if_open();
    return s;
  }
  Status committed;
  {
    Run run(commit.get());
    committed = expect_done(run, what);
  }
  if (committed) roll_back_if_open();
  return committed;
}

Status MetadataStore::Database::begin_batch() {
  if (batch_open) return StoreError{fmt::format("{}: begin batch: a batch is already open", path)};
  Run run(begin.get());
  if (Status s = expect_done(run, "begin batch")) return s;
  batch_open = true;
  batch_error.reset();
  return {};
}

Status MetadataStore::Database::finish_batch(bool commit_it) {
  batch_open = false;
  Status failure = std::move(batch_error);
  batch_error.reset();
  if (commit_it && !failure) {
    Run run(commit.get());
    failure = expect_done(run, "commit batch");
  } else if (commit_it) {
    failure = StoreError{fmt::format("{}: batch rolled back: {}", path, failure->message)};
  }
  roll_back_if_open();
  return commit_it ? failure : Status{};
}

Result<Definitions> MetadataStore::Database::load() {
  Definitions defs;
  auto bad_arguments = [&](const std::string& what) {
    return StoreError{
        fmt::format("{}: load: arguments of {} are not a valid field table", path, what)};
  };
  int rc;
  {
    Run run(load_exchanges.get());
    while ((rc = run.step()) == SQLITE_ROW) {
      ExchangeRecord& e = defs.exchanges.emplace_back();
      e.vhost = run.column_text(0);
      e.name = run.column_text(1);
      e.type = run.column_text(2);
      e.durable = run.column_int(3) != 0;
      e.auto_delete = run.column_int(4) != 0;
      e.internal = run.column_int(5) != 0;
      auto args = decode_table(run.column_blob(6));
      if (!args) return bad_arguments(describe("exchange", e.vhost, e.name));
      e.arguments = std::move(*args);
    }
    if (rc != SQLITE_DONE) return fail("load exchanges", rc);
  }
  {
    Run run(load_queues.get());
    while ((rc = run.step()) == SQLITE_ROW) {
      QueueRecord& q = defs.queues.emplace_back();
      q.vhost = run.column_text(0);
      q.name = run.column_text(1);
      q.durable = run.column_int(2) != 0;
      q.auto_delete = run.column_int(3) != 0;
      auto args = decode_table(run.column_blob(4));
      if (!args) return bad_arguments(describe("queue", q.vhost, q.name));
      q.arguments = std::move(*args);
      q.id = static_cast<uint64_t>(run.column_int(5));
    }
    if (rc != SQLITE_DONE) return fail("load queues", rc);
  }
  {
    Run run(load_bindings.get());
    while ((rc = run.step()) == SQLITE_ROW) {
      BindingRecord& b = defs.bindings.emplace_back();
      b.vhost = run.column_text(0);
      b.source = run.column_text(1);
      b.destination = run.column_text(2);
      b.destination_is_queue = run.column_int(3) != 0;
      b.routing_key = run.column_text(4);
      auto args = decode_table(run.column_blob(5));
      if (!args) return bad_arguments(describe(b));
      b.arguments = std::move(*args);
    }
    if (rc != SQLITE_DONE) return fail("load bindings", rc);
  }
  if (Status s = load_policies(defs.policies)) return *s;
  return defs;
}

Result<AccessDefinitions> MetadataStore::Database::load_access() {
  AccessDefinitions defs;
  auto each_row = [&](const char* sql, auto row) -> Status {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db.get(), sql, -1, &raw, nullptr);
    StatementHandle stmt(raw);
    if (rc != SQLITE_OK) return fail("load users, vhosts and permissions", rc);
    Run run(stmt.get());
    while ((rc = run.step()) == SQLITE_ROW) row(run);
    return rc == SQLITE_DONE ? Status{} : fail("load users, vhosts and permissions", rc);
  };
  if (Status s = each_row("SELECT name, password_hash, tags FROM users ORDER BY name",
                          [&](const Run& r) {
                            UserRecord& u = defs.users.emplace_back();
                            u.name = r.column_text(0);
                            u.password_hash = r.column_text(1);
                            std::string tags = r.column_text(2);
                            size_t start = 0;
                            while (start < tags.size()) {
                              size_t end = tags.find(',', start);
                              if (end == std::string::npos) end = tags.size();
                              if (end > start) u.tags.push_back(tags.substr(start, end - start));
                              start = end + 1;
                            }
                          }))
    return *s;
  if (Status s = each_row("SELECT name, max_connections, max_queues FROM vhosts ORDER BY name",
                          [&](const Run& r) {
                            defs.vhosts.push_back(
                                VHostRecord{r.column_text(0), r.column_int(1), r.column_int(2)});
                          }))
    return *s;
  if (Status s = each_row(
          "SELECT user, vhost, configure, write, read FROM permissions ORDER BY user, vhost",
          [&](const Run& r) {
            defs.permissions.push_back(PermissionRecord{r.column_text(0), r.column_text(1),
                                                        r.column_text(2), r.column_text(3),
                                                        r.column_text(4)});
          }))
    return *s;
  if (Status s = each_row("SELECT user, vhost, exchange, write, read FROM topic_permissions "
                          "ORDER BY user, vhost, exchange",
                          [&](const Run& r) {
                            defs.topic_permissions.push_back(TopicPermissionRecord{
                                r.column_text(0), r.column_text(1), r.column_text(2),
                                r.column_text(3), r.column_text(4)});
                          }))
    return *s;
  return defs;
}

// ---- MetadataStore ----

Result<MetadataStore> MetadataStore::open(const std::string& dir) {
  auto db = Database::open(dir);
  if (!db) return db.error();
  return MetadataStore(std::move(*db));
}

MetadataStore::MetadataStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
MetadataStore::MetadataStore(MetadataStore&&) noexcept = default;
MetadataStore& MetadataStore::operator=(MetadataStore&&) noexcept = default;
MetadataStore::~MetadataStore() = default;

std::string MetadataStore::path() const { return db_->path; }

Status MetadataStore::save_exchange(const ExchangeRecord& e) {
  const std::string what = "save " + describe("exchange", e.vhost, e.name);
  return db_->write(what, [&]() -> Status {
    Run run(db_->save_exchange.get());
    run.text(e.vhost).text(e.name).text(e.type).integer(e.durable).integer(e.auto_delete);
    run.integer(e.internal).blob(encode_table_body(e.arguments));
    return db_->expect_done(run, what);
  });
}

Status MetadataStore::delete_exchange(const std::string& vhost, const std::string& name) {
  const std::string what = "delete " + describe("exchange", vhost, name);
  return db_->write(what, [&]() -> Status {
    for (auto* stmt : {&db_->delete_bindings_by_source, &db_->delete_bindings_to_exchange,
                       &db_->delete_exchange}) {
      Run run(stmt->get());
      run.text(vhost).text(name);
      if (Status s = db_->expect_done(run, what)) return s;
    }
    return {};
  });
}

Result<uint64_t> MetadataStore::save_queue(const QueueRecord& q) {
  const std::string what = "save " + describe("queue", q.vhost, q.name);
  uint64_t id = 0;
  Status s = db_->write(what, [&]() -> Status {
    Run run(db_->save_queue.get());
    run.text(q.vhost).text(q.name).integer(q.durable).integer(q.auto_delete);
    run.blob(encode_table_body(q.arguments));
    int rc = run.step();
    if (rc != SQLITE_ROW) return db_->fail(what, rc);
    id = static_cast<uint64_t>(run.column_int(0));
    // Run the statement to completion rather than leave it mid-way until it is reset.
    return db_->expect_done(run, what);
  });
  if (s) return *s;
  return id;
}

Status MetadataStore::delete_queue(const std::string& vhost, const std::string& name) {
  const std::string what = "delete " + describe("queue", vhost, name);
  return db_->write(what, [&]() -> Status {
    for (auto* stmt : {&db_->delete_queue_bindings, &db_->delete_queue}) {
      Run run(stmt->get());
      run.text(vhost).text(name);
      if (Status s = db_->expect_done(run, what)) return s;
    }
    return {};
  });
}

namespace {
void bind_binding(Run& run, const BindingRecord& b) {
  run.text(b.vhost).text(b.source).text(b.destination).integer(b.destination_is_queue);
  run.text(b.routing_key).blob(encode_table_body(b.arguments));
}
}  // namespace

Status MetadataStore::save_binding(const BindingRecord& b) {
  const std::string what = "save " + describe(b);
  return db_->write(what, [&]() -> Status {
    Run run(db_->save_binding.get());
    bind_binding(run, b);
    return db_->expect_done(run, what);
  });
}

Status MetadataStore::delete_binding(const BindingRecord& b) {
  const std::string what = "delete " + describe(b);
  return db_->write(what, [&]() -> Status {
    Run run(db_->delete_binding.get());
    bind_binding(run, b);
    return db_->expect_done(run, what);
  });
}

Result<Definitions> MetadataStore::load() { return db_->load(); }

Result<AccessDefinitions> MetadataStore::load_access() { return db_->load_access(); }

Status MetadataStore::save_user(const UserRecord& u) {
  std::string tags;
  for (const std::string& t : u.tags) tags += (tags.empty() ? "" : ",") + t;
  const std::string what = fmt::format("save user '{}'", u.name);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what,
                         "INSERT INTO users (name, password_hash, tags) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, "
                         "tags = excluded.tags",
                         {u.name, u.password_hash, tags});
  });
}

Status MetadataStore::delete_user(const std::string& name) {
  const std::string what = fmt::format("delete user '{}'", name);
  return db_->write(what, [&]() -> Status {
    if (Status s = db_->exec_sql(what, "DELETE FROM permissions WHERE user = ?", {name})) return s;
    if (Status s = db_->exec_sql(what, "DELETE FROM topic_permissions WHERE user = ?", {name}))
      return s;
    return db_->exec_sql(what, "DELETE FROM users WHERE name = ?", {name});
  });
}

Status MetadataStore::save_vhost(const VHostRecord& v) {
  const std::string what = fmt::format("save vhost '{}'", v.name);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what,
                         "INSERT INTO vhosts (name, max_connections, max_queues) VALUES (?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET max_connections = "
                         "excluded.max_connections, max_queues = excluded.max_queues",
                         {v.name, v.max_connections, v.max_queues});
  });
}

Status MetadataStore::delete_vhost(const std::string& name) {
  const std::string what = fmt::format("delete vhost '{}'", name);
  return db_->write(what, [&]() -> Status {
    for (const char* sql : {"DELETE FROM bindings WHERE vhost = ?", "DELETE FROM queues WHERE vhost = ?",
                            "DELETE FROM exchanges WHERE vhost = ?",
                            "DELETE FROM permissions WHERE vhost = ?",
                            "DELETE FROM topic_permissions WHERE vhost = ?",
                            "DELETE FROM policies WHERE vhost = ?",
                            "DELETE FROM vhosts WHERE name = ?"}) {
      if (Status s = db_->exec_sql(what, sql, {name})) return s;
    }
    return {};
  });
}

Status MetadataStore::save_permission(const PermissionRecord& p) {
  const std::string what = fmt::format("save permissions of user '{}' in vhost '{}'", p.user, p.vhost);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what,
                         "INSERT INTO permissions (user, vhost, configure, write, read) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user, vhost) DO UPDATE SET "
                         "configure = excluded.configure, write = excluded.write, "
                         "read = excluded.read",
                         {p.user, p.vhost, p.configure, p.write, p.read});
  });
}

Status MetadataStore::delete_permission(const std::string& user, const std::string& vhost) {
  const std::string what = fmt::format("clear permissions of user '{}' in vhost '{}'", user, vhost);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what, "DELETE FROM permissions WHERE user = ? AND vhost = ?",
                         {user, vhost});
  });
}

Status MetadataStore::save_topic_permission(const TopicPermissionRecord& p) {
  const std::string what = fmt::format(
      "save topic permissions on exchange '{}' of user '{}' in vhost '{}'", p.exchange, p.user,
      p.vhost);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what,
                         "INSERT INTO topic_permissions (user, vhost, exchange, write, read) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user, vhost, exchange) DO UPDATE "
                         "SET write = excluded.write, read = excluded.read",
                         {p.user, p.vhost, p.exchange, p.write, p.read});
  });
}

Status MetadataStore::delete_topic_permissions(const std::string& user, const std::string& vhost,
                                               const std::string* exchange) {
  const std::string what =
      fmt::format("clear topic permissions of user '{}' in vhost '{}'", user, vhost);
  return db_->write(what, [&]() -> Status {
    if (exchange == nullptr)
      return db_->exec_sql(what, "DELETE FROM topic_permissions WHERE user = ? AND vhost = ?",
                           {user, vhost});
    return db_->exec_sql(
        what, "DELETE FROM topic_permissions WHERE user = ? AND vhost = ? AND exchange = ?",
        {user, vhost, *exchange});
  });
}

Status MetadataStore::save_global_parameter(const GlobalParameterRecord& p) {
  const std::string what = fmt::format("save global parameter '{}'", p.name);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what,
                         "INSERT INTO global_parameters (name, value) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                         {p.name, p.value});
  });
}

Status MetadataStore::delete_global_parameter(const std::string& name) {
  const std::string what = fmt::format("clear global parameter '{}'", name);
  return db_->write(what, [&]() -> Status {
    return db_->exec_sql(what, "DELETE FROM global_parameters WHERE name = ?", {name});
  });
}

Result<std::vector<GlobalParameterRecord>> MetadataStore::load_global_parameters() {
  std::vector<GlobalParameterRecord> out;
  auto stmt = db_->prepare("SELECT name, value FROM global_parameters ORDER BY name",
                           "load global parameters");
  if (!stmt) return stmt.error();
  Run run(stmt->get());
  int rc;
  while ((rc = run.step()) == SQLITE_ROW) out.push_back({run.column_text(0), run.column_text(1)});
  if (rc != SQLITE_DONE) return db_->fail("load global parameters", rc);
  return out;
}

Status MetadataStore::save_policy(const PolicyRecord& p) {
  const std::string what = "save " + describe("policy", p.vhost, p.name);
  return db_->write(what, [&]() -> Status {
    auto stmt = db_->prepare(
        "INSERT INTO policies (vhost, name, pattern, apply_to, priority, definition) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vhost, name) DO UPDATE SET "
        "pattern = excluded.pattern, apply_to = excluded.apply_to, "
        "priority = excluded.priority, definition = excluded.definition", what);
    if (!stmt) return stmt.error();
    Run run(stmt->get());
    run.text(p.vhost).text(p.name).text(p.pattern).text(p.apply_to).integer(p.priority);
    run.text(p.definition);
    return db_->expect_done(run, what);
  });
}

Status MetadataStore::delete_policy(const std::string& vhost, const std::string& name) {
  const std::string what = "delete " + describe("policy", vhost, name);
  return db_->write(what, [&]() -> Status {
    auto stmt = db_->prepare("DELETE FROM policies WHERE vhost = ?1 AND name = ?2", what);
    if (!stmt) return stmt.error();
    Run run(stmt->get());
    run.text(vhost).text(name);
    return db_->expect_done(run, what);
  });
}

Result<MetadataStore::Batch> MetadataStore::begin() {
  if (Status s = db_->begin_batch()) return *s;
  return Batch(db_.get());
}

// ---- Batch ----

MetadataStore::Batch::Batch(Batch&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

MetadataStore::Batch::~Batch() {
  if (db_) db_->finish_batch(false);
}

Status MetadataStore::Batch::commit() {
  if (!db_) return StoreError{"commit batch: the batch is already finished"};
  return std::exchange(db_, nullptr)->finish_batch(true);
}

}  // namespace warren::store
