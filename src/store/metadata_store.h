// Durable definitions (exchanges, queues, bindings) kept in SQLite at DIR/metadata.db. Every write
// is durable when the call returns: WAL with synchronous=FULL fsyncs the log on each commit. A
// Batch groups many writes into one transaction and so into one fsync, for imports and declare
// bursts.
//
// Not thread-safe: one thread owns a store and its batches. The database is opened in exclusive
// locking mode, so a second connection (another process, or a second open() in this one) is
// refused while a store is open.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/field_table.h"
#include "common/result.h"

namespace warren::store {

// The message names the file and the operation, e.g.
// "/var/lib/warren/metadata.db: cannot open: file is not a database".
struct StoreError {
  std::string message;
};

template <class T>
using Result = warren::Result<T, StoreError>;

// For operations with no value: an empty optional means success.
using Status = std::optional<StoreError>;

struct ExchangeRecord {
  std::string vhost, name, type;
  bool durable = true, auto_delete = false, internal = false;
  FieldTable arguments;
};

struct QueueRecord {
  std::string vhost, name;
  bool durable = true, auto_delete = false;
  FieldTable arguments;
  // Assigned by the store when the queue is first saved and never reused, even after the queue is
  // deleted, so messages tagged with it cannot be attributed to a later queue. Ignored by
  // save_queue.
  uint64_t id = 0;
};

// Identity is every field: the same source, destination and key with different arguments is a
// different binding. Arguments compare by their encoded bytes, so entry order matters.
struct BindingRecord {
  std::string vhost, source, destination;
  bool destination_is_queue = true;
  std::string routing_key;
  FieldTable arguments;
};

// A policy (broker/policy.h) as stored: table `policies` (vhost TEXT, name TEXT, pattern TEXT,
// apply_to TEXT 'queues'|'exchanges'|'all', priority INTEGER, definition TEXT: the JSON object
// as set_policy received it, e.g. '{"max-length":5}'; UNIQUE (vhost, name); rows in the order
// first saved by `position`). The broker validates it again when it restores it.
struct PolicyRecord {
  std::string vhost, name, pattern, apply_to = "all";
  int64_t priority = 0;
  std::string definition;
};

struct Definitions {
  std::vector<ExchangeRecord> exchanges;  // in the order first saved
  std::vector<QueueRecord> queues;        // in the order first saved (ascending id)
  std::vector<BindingRecord> bindings;    // in the order created
  std::vector<PolicyRecord> policies;     // in the order first saved
};

// Users, vhosts and permissions (schema version 2). Tables, for tools that seed a data directory:
//   users(name TEXT PRIMARY KEY, password_hash TEXT, tags TEXT)  -- hash as RabbitMQ's SHA-256
//     (base64 of salt(4) ++ sha256(salt ++ password)); "" = cannot log in; tags comma-separated
//   vhosts(name TEXT PRIMARY KEY, max_connections INTEGER, max_queues INTEGER)  -- -1 = no limit
//   permissions(user, vhost, configure, write, read: TEXT; PRIMARY KEY (user, vhost))  -- regexes
//   topic_permissions(user, vhost, exchange, write, read: TEXT;
//     PRIMARY KEY (user, vhost, exchange))  -- regexes (schema version 4)
struct UserRecord {
  std::string name, password_hash;
  std::vector<std::string> tags;
};

struct VHostRecord {
  std::string name;
  int64_t max_connections = -1, max_queues = -1;
};

struct PermissionRecord {
  std::string user, vhost, configure, write, read;
};

struct TopicPermissionRecord {
  std::string user, vhost, exchange, write, read;
};

// A global runtime parameter (rabbitmqctl set_global_parameter) as stored: table
// global_parameters(name TEXT PRIMARY KEY, value TEXT: the JSON text) (schema version 5). The
// broker parses the value again when it restores it.
struct GlobalParameterRecord {
  std::string name, value;
};

struct AccessDefinitions {
  std::vector<UserRecord> users;              // by name
  std::vector<VHostRecord> vhosts;            // by name
  std::vector<PermissionRecord> permissions;  // by user, then vhost
  std::vector<TopicPermissionRecord> topic_permissions;  // by user, vhost, then exchange
};

class MetadataStore {
 public:
  class Batch;

  // Opens or creates DIR/metadata.db (creating DIR if needed) and brings its schema up to date.
  // Fails with a readable message for a file that is not SQLite, a damaged database, a database
  // written by a newer Warren, an unusable directory, or a database held open by someone else.
  static Result<MetadataStore> open(const std::string& dir);

  MetadataStore(MetadataStore&&) noexcept;
  MetadataStore& operator=(MetadataStore&&) noexcept;
  ~MetadataStore();

  Status save_exchange(const ExchangeRecord& exchange);  // insert or replace, keeping its position
  // Also deletes the bindings it is the source or destination of, in the same transaction.
  Status delete_exchange(const std::string& vhost, const std::string& name);

  Result<uint64_t> save_queue(const QueueRecord& queue);  // insert or replace; the queue's id
  Status delete_queue(const std::string& vhost, const std::string& name);  // and its bindings

  Status save_binding(const BindingRecord& binding);  // saving an existing binding changes nothing
  Status delete_binding(const BindingRecord& binding);

  Status save_policy(const PolicyRecord& policy);  // insert or replace, keeping its position
  Status delete_policy(const std::string& vhost, const std::string& name);

  Result<Definitions> load();

  // Users, vhosts and permissions; each call is one transaction (or joins the open batch).
  Status save_user(const UserRecord& user);  // insert or replace
  Status delete_user(const std::string& name);  // and its permissions and topic permissions
  Status save_vhost(const VHostRecord& vhost);  // insert or replace (limits)
  // And every exchange, queue, binding, permission and topic permission in it.
  Status delete_vhost(const std::string& name);
  Status save_permission(const PermissionRecord& permission);  // insert or replace
  Status delete_permission(const std::string& user, const std::string& vhost);
  Status save_topic_permission(const TopicPermissionRecord& permission);  // insert or replace
  // Those of every exchange when exchange is null.
  Status delete_topic_permissions(const std::string& user, const std::string& vhost,
                                  const std::string* exchange);
  Result<AccessDefinitions> load_access();

  // Global runtime parameters; each call is one transaction (or joins the open batch).
  Status save_global_parameter(const GlobalParameterRecord& parameter);  // insert or replace
  Status delete_global_parameter(const std::string& name);  // none such: nothing to do
  Result<std::vector<GlobalParameterRecord>> load_global_parameters();  // by name

  // Starts a transaction that every write through this store joins until the batch is committed
  // or destroyed; destroying it uncommitted rolls all of them back. If any write in the batch
  // fails, later writes fail too and commit() rolls back and reports the first error, so a batch
  // is applied entirely or not at all. Fails if a batch is already open.
  Result<Batch> begin();

  std::string path() const;

 private:
  class Database;
  explicit MetadataStore(std::unique_ptr<Database> db);
  std::unique_ptr<Database> db_;
};

class MetadataStore::Batch {
 public:
  Batch(Batch&& other) noexcept;
  Batch& operator=(Batch&&) = delete;
  Batch(const Batch&) = delete;
  ~Batch();  // rolls back unless committed

  // One fsync for everything written since begin(). The batch is finished either way.
  Status commit();

 private:
  friend class MetadataStore;
  explicit Batch(Database* db) : db_(db) {}
  Database* db_;  // null once committed, rolled back or moved from; must not outlive the store
};

}  // namespace warren::store
