// The broker: vhosts, users, limits, and the end-of-turn work queue that batches dispatch and
// socket flushes (all on one io thread; no locks on the message path).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "auth/access_control.h"
#include "auth/user_store.h"
#include "broker/connection_info.h"
#include "broker/error.h"
#include "broker/delayed_exchange.h"
#include "broker/exchange.h"
#include "broker/global_parameters.h"
#include "broker/memory_trimmer.h"
#include "broker/message_journal.h"
#include "broker/queue.h"
#include "broker/reply_consumers.h"
#include "broker/stats_sampler.h"
#include "broker/vhost.h"

namespace warren::broker {

struct Limits {
  uint32_t frame_max = 131072;       // proposed in connection.tune (RabbitMQ's default)
  uint16_t channel_max = 2047;       // RabbitMQ's default
  uint16_t heartbeat = 60;           // seconds, proposed in connection.tune
  uint64_t max_message_size = 134217728;  // 128 MiB, RabbitMQ's default
  size_t output_high_water = 1 << 20;     // stop delivering to a socket with this much unsent
  size_t output_hard_cap = 16 << 20;      // and stop reading its requests past this much
  // Memory alarm: publishers are blocked while messages hold more than this many bytes.
  uint64_t memory_high_watermark = uint64_t{1} << 62;
  // Disk alarm: publishers are blocked while the data directory's file system has less free
  // space than this (RabbitMQ's disk_free_limit, 50 MB by default). 0 = off.
  uint64_t disk_free_limit = 50'000'000;
};

// Something with buffered output to write at the end of the current event-loop turn.
class OutputFlusher {
 public:
  virtual ~OutputFlusher() = default;
  virtual void flush_output() = 0;
  bool flush_scheduled = false;
};

// A client connection as the broker sees it, for shutdown.
class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  // The vhost it opened ("" before connection.open), to close it when the vhost is deleted.
  virtual std::string_view vhost_name() const { return {}; }
  // Closes with 320 CONNECTION_FORCED and the reason, then drops the socket.
  virtual void force_close(std::string_view reason) = 0;
  // Closes with 320 CONNECTION_FORCED and exactly this text (RabbitMQ's "vhost 'v' is deleted").
  virtual void force_close_with_text(std::string_view text) { force_close(text); }
  // Every resource alarm cleared: a connection blocked by one may publish again.
  virtual void alarms_cleared() = 0;
  // Something that paused reading (the journal's unsynced backlog) is gone.
  virtual void reading_may_resume() = 0;
  // For warrenctl's listings.
  virtual ConnectionInfo info() const { return {}; }
  // What counts need without copying info() (the overview over 10,000 connections).
  virtual std::string_view user_name() const { return {}; }
  virtual size_t channel_count() const { return 0; }
  // The statistics sampler's tick: samples the connection's channels (stats_sampler.h).
  virtual void sample_stats(uint64_t now_ms, uint64_t previous_ms, size_t capacity) {}
  // warrenctl close_connection: 320 CONNECTION_FORCED with the operator's text as the reason.
  virtual void close_by_operator(std::string_view explanation) { force_close(explanation); }
};

// Waits for the journal to sync records it wrote (publisher confirms, tx.commit-ok).
class JournalWaiter {
 public:
  virtual ~JournalWaiter() = default;
  // Seqs [c.first_seq, c.last_seq] are now durable (or failed when c.error). Returns whether the
  // waiter still waits for later seqs.
  virtual bool journal_synced(const store::Completion& c) = 0;
};

// Per-vhost limits (rabbitmqctl set_vhost_limits); -1 = unlimited, nullopt = leave unchanged.
struct VHostLimits {
  std::optional<int64_t> max_connections, max_queues;
};

// What a first start creates (rabbitmq.conf default_user, default_pass, default_vhost,
// default_user_tags.*).
struct DefaultAccess {
  std::string user = "guest";
  std::string pass = "guest";
  std::string vhost = "/";
  std::vector<std::string> tags = {"administrator"};
};

struct UserPermissionEntry {
  std::string user, vhost;
  auth::PermissionSet permissions;
};

class Broker : public DispatchScheduler, public DelayTimer {
 public:
  // metadata (optional) persists durable definitions; it must outlive the broker.
  Broker(boost::asio::io_context& io, Limits limits, auth::UserStore users,
         store::MetadataStore* metadata = nullptr);
  ~Broker() override;

  boost::asio::io_context& io() { return io_; }
  const Limits& limits() const { return limits_; }
  // Every client publish since start, whatever vhost it went to (Prometheus'
  // rabbitmq_global_messages_*_total: publish, return_unroutable, drop_unroutable; the rest
  // were routed).
  const MessageStats& client_publishes() const { return client_publishes_; }

  // Management statistics (message_stats.h). A client's publish through any protocol: the
  // broker-wide totals above, the vhost's and the channel's counters (channel: null for the
  // HTTP API). Confirms sent and basic.get on an empty queue likewise.
  void count_publish(VHost& vh, const PublishOutcome& o, ObjectStats* channel);
  void count_confirms(VHost& vh, uint64_t n, ObjectStats* channel);
  void count_get_empty(Queue& q, ObjectStats* channel);
  // Starts sampling every interval_ms (rabbitmq.conf collect_statistics_interval).
  void start_stats_sampling(uint64_t interval_ms);
  // Null until start_stats_sampling.
  StatsSampler* stats_sampler() { return stats_sampler_.get(); }
  auth::UserStore& users() { return users_; }

  VHost* find_vhost(std::string_view name);
  VHost& add_vhost(std::string name);

  // ---- Users, vhosts, permissions and limits (RabbitMQ's internal auth backend and
  // rabbit_vhost). Every change is saved to the metadata store (one transaction) before it
  // applies; errors carry RabbitMQ's texts. The API of warrenctl, definitions and management.

  // Restores users, vhosts (with their definitions), limits and permissions from the metadata
  // store. A store that has neither users nor vhosts (first start) gets RabbitMQ's default data
  // (rabbit:insert_default_data): the default vhost, and the default user with its tags and
  // ".*" ".*" ".*" on that vhost.
  Status restore_access(const store::Definitions& definitions, const DefaultAccess& defaults);
  Status add_user(const std::string& name, std::string_view password,
                  std::vector<std::string> tags = {});
  // As add_user with a hash in RabbitMQ's SHA-256 format ("" = no password: cannot log in).
  Status add_user_with_hash(const std::string& name, std::string password_hash,
                            std::vector<std::string> tags = {});
  // Definitions import: adds the user or replaces its hash and tags (permissions are kept).
  Status put_user_with_hash(const std::string& name, std::string password_hash,
                            std::vector<std::string> tags);
  Status delete_user(const std::string& name);                // and its permissions
  Status change_password(const std::string& name, std::string_view password);
  Status clear_password(const std::string& name);
  Status set_user_tags(const std::string& name, std::vector<std::string> tags);
  std::vector<auth::User> list_users() const;  // by name
  Status create_vhost(const std::string& name);  // an existing vhost is left as it is
  // Closes its connections (320 "vhost 'v' is deleted"), then deletes its exchanges, queues
  // (and their messages), bindings and permissions.
  Status delete_vhost(const std::string& name);
  std::vector<std::string> list_vhosts() const;  // by name
  Status set_vhost_limits(const std::string& vhost, VHostLimits limits);
  Status set_permissions(const std::string& user, const std::string& vhost,
                         auth::PermissionSet permissions);
  Status clear_permissions(const std::string& user, const std::string& vhost);
  std::vector<UserPermissionEntry> list_permissions(const std::string& vhost) const;
  std::vector<UserPermissionEntry> list_user_permissions(const std::string& user) const;
  const auth::AccessControl& access_control() const { return access_; }
  // rabbit_access_control:check_resource_access: nullopt when permitted, else ACCESS_REFUSED
  // "access to queue 'q' in vhost '/' refused for user 'u'". kind is "queue" or "exchange"; the
  // default exchange "" is checked as "amq.default".
  Status check_access(std::string_view user, std::string_view vhost, auth::Permission what,
                      std::string_view kind, std::string_view name) const;

  // ---- Topic permissions (broker_topic_access.cc; auth/topic_permissions.h) ----
  // Set and clear need an existing user and vhost (any exchange name, existing or not).
  Status set_topic_permissions(const std::string& user, const std::string& vhost,
                               const std::string& exchange, auth::TopicPermissionSet p);
  // Every exchange's when exchange is null.
  Status clear_topic_permissions(const std::string& user, const std::string& vhost,
                                 const std::string* exchange);
  // Ordered by user, vhost, then exchange.
  std::vector<auth::TopicPermissionEntry> list_topic_permissions() const;
  // Whether any topic check can refuse this user in this vhost (cheap; cache it with
  // access_control().generation()).
  bool topic_checks_apply(std::string_view user, std::string_view vhost) const {
    return access_.topics().any(user, vhost);
  }
  // rabbit_access_control:check_topic_access: nullopt when permitted, else ACCESS_REFUSED
  // "access to topic 'key' in exchange 'x' in vhost 'v' refused for user 'u'". what is kWrite
  // (publish) or kRead (bind, subscribe). client_id only from MQTT.
  Status check_topic_access(std::string_view user, std::string_view vhost,
                            std::string_view exchange, auth::Permission what,
                            std::string_view routing_key,
                            std::optional<std::string_view> client_id = std::nullopt) const;
  // The same for an exchange by its type, as rabbit_channel:check_topic_authorisation: only
  // topic exchanges are checked (a missing exchange, x = null, passes; the operation then fails
  // on its own).
  Status check_topic_access_on(const Exchange* x, std::string_view user, std::string_view vhost,
                               auth::Permission what, std::string_view routing_key) const;

  // ---- Global runtime parameters (broker_global_parameters.cc; global_parameters.h) ----
  // The JSON value of global parameter `name`, or null when it is not set. A map lookup, no
  // lock; the pointer is valid until that parameter is next set or cleared.
  const boost::json::value* global_parameter(std::string_view name) const {
    return global_parameters_.find(name);
  }
  // Adds or replaces (any name, any JSON value); saved to the metadata store first.
  Status set_global_parameter(const std::string& name, boost::json::value value);
  // kNotFound "Parameter does not exist" (rabbit_runtime_parameters:clear_global's text).
  Status clear_global_parameter(const std::string& name);
  const GlobalParameters::Map& list_global_parameters() const { return global_parameters_.all(); }
  // Loads them from the metadata store at start (a stored value that no longer parses is
  // skipped with a warning).
  Status restore_global_parameters();

  // Firehose tracing (rabbitmqctl trace_on/trace_off; firehose.h), by vhost name as RabbitMQ's
  // trace_vhosts setting: in memory only (no vhost is traced after a restart), and a name is
  // kept whether or not such a vhost exists, so a vhost created (or recreated) under it is
  // traced. broker_tracing.cc.
  void set_tracing(const std::string& vhost, bool on);
  bool tracing(std::string_view vhost) const { return traced_vhosts_.contains(vhost); }
  // The node name trace messages carry (the server sets warren@<hostname> at start).
  void set_node_name(std::string name) { node_name_ = std::move(name); }

  uint64_t next_connection_id() { return ++last_connection_id_; }

  // The registry owns open connections: a connection paused by flow control has no I/O in flight
  // to keep it alive. It unregisters itself when its socket closes.
  void register_connection(std::shared_ptr<ClientConnection> c) {
    ClientConnection* key = c.get();
    connections_.emplace(key, std::move(c));
  }
  void unregister_connection(ClientConnection* c) { connections_.erase(c); }
  size_t connection_count() const { return connections_.size(); }
  // For warrenctl: the open connections (read-only) and the definitions store (imports batch).
  const std::unordered_map<ClientConnection*, std::shared_ptr<ClientConnection>>& connections()
      const { return connections_; }
  store::MetadataStore* metadata() { return metadata_; }
  void close_all_connections(std::string_view reason);

  // Direct reply-to: consumers of the pseudo-queue amq.rabbitmq.reply-to, by their reply token.
  ReplyConsumers& reply_consumers() { return reply_consumers_; }

  // Memory alarm (RabbitMQ's vm_memory_high_watermark): true while message memory is above the
  // watermark; publishing connections then stop being read until it clears.
  bool check_memory_alarm();
  bool memory_alarm() const { return memory_alarm_; }
  // Disk alarm (RabbitMQ's disk_free_limit): checks the free space of dir's file system now and
  // then every second; while it is below limits().disk_free_limit publishers are blocked, so
  // the journal keeps room for acks.
  void watch_disk(std::string dir);
  bool disk_alarm() const { return disk_alarm_; }
  // Whether a publishing connection must stop being read, and the reason sent in
  // connection.blocked.
  bool publishing_blocked() { return check_memory_alarm() || disk_alarm_; }
  std::string_view alarm_reason() const { return memory_alarm_ ? "low on memory" : "low on disk"; }

  // Persistent messages: opens DATA_DIR/msgs and restores the messages of the durable queues
  // already restored from the metadata store. Without it, nothing is journaled.
  std::error_code open_journal(store::MessageStoreOptions options, store::RecoveryReport* report);
  // Syncs the journal and stops writing to it; called once the event loop has stopped. With every
  // connection closed (their unacked messages requeued), also records which messages had been
  // delivered, so only those come back flagged redelivered.
  void close_journal();
  MessageJournal& journal() { return journal_; }
  void wait_for_journal(JournalWaiter* w);
  void stop_waiting_for_journal(JournalWaiter* w);
  // True while the journal holds more unsynced bytes than kJournalHighWater: connections stop
  // reading until the disk catches up (below kJournalLowWater).
  bool journal_backlogged() const { return journal_backlogged_; }
  static constexpr uint64_t kJournalHighWater = uint64_t{64} << 20;
  static constexpr uint64_t kJournalLowWater = uint64_t{16} << 20;

  void schedule_dispatch(Queue& q) override;
  void schedule_wakeup(Queue& q, uint64_t at_ms) override;
  // Delayed exchanges share the queues' timer.
  void schedule_wakeup(DelayStore& s, uint64_t at_ms) override;
  void schedule_flush(std::shared_ptr<OutputFlusher> f);
  // Gives the heap that big queues freed back to the OS (memory_trimmer.h).
  MemoryTrimmer* memory_trimmer() override { return &trimmer_; }

 private:
  void schedule_drain();
  void arm_wakeup_timer();
  void on_wakeup_timer();
  // Runs once per event-loop turn after the handlers that produced work: dispatches queues with
  // new messages or consumer credit, then writes every socket with pending output.
  void drain();
  void watch_memory_alarm();
  void check_disk();
  void update_disk_alarm();
  void notify_alarms_cleared();
  void on_journal_synced(const store::Completion& c);
  // Every 2 s: copies live messages out of sparse journal segments so those can be deleted.
  void schedule_compaction();
  void compact_journal();

  boost::asio::io_context& io_;
  Limits limits_;
  auth::UserStore users_;
  auth::AccessControl access_;
  store::MetadataStore* metadata_;
  std::unordered_map<std::string, std::unique_ptr<VHost>, StringHash, std::equal_to<>> vhosts_;
  std::vector<QueueRef> dirty_queues_;
  std::vector<QueueRef> dispatching_;
  std::vector<std::shared_ptr<OutputFlusher>> dirty_flushers_;
  std::vector<std::shared_ptr<OutputFlusher>> flushing_;
  std::unordered_map<ClientConnection*, std::shared_ptr<ClientConnection>> connections_;
  ReplyConsumers reply_consumers_;
  bool drain_scheduled_ = false;
  MessageStats client_publishes_;
  std::unique_ptr<StatsSampler> stats_sampler_;
  bool memory_alarm_ = false;
  boost::asio::steady_timer alarm_timer_;
  boost::asio::steady_timer disk_timer_;
  std::string disk_dir_;
  bool disk_alarm_ = false;
  uint64_t disk_checked_at_ = 0;  // journal bytes_appended() at the last check
  uint64_t last_connection_id_ = 0;
  MessageJournal journal_;
  boost::asio::steady_timer compaction_timer_;
  std::vector<JournalWaiter*> journal_waiters_;  // null entries: removed while notifying
  bool notifying_waiters_ = false;
  bool journal_backlogged_ = false;
  // Queue wakeups (message TTL, x-expires) and delayed exchanges' due messages: one timer for
  // all, earliest first.
  struct Wakeup {
    uint64_t at_ms;
    QueueRef queue;
    Ref<DelayStore> delays;  // set instead of queue
    bool operator>(const Wakeup& o) const { return at_ms > o.at_ms; }
  };
  // A min-heap (std::push_heap/pop_heap with greater<>), a vector so that stale entries can be
  // dropped: a deleted queue, a detached delay store, or a queue wakeup superseded by an earlier
  // one would otherwise stay (and keep their queue alive) until due, perhaps hours later.
  std::vector<Wakeup> wakeups_;
  size_t wakeups_compact_at_ = kWakeupsCompactMin;
  static constexpr size_t kWakeupsCompactMin = 1024;
  void add_wakeup(Wakeup w);

 public:
  size_t pending_wakeups() const { return wakeups_.size(); }  // for tests

 private:
  void drop_stale_wakeups();
  boost::asio::steady_timer wakeup_timer_;
  uint64_t wakeup_timer_at_ = 0;  // when the timer fires (0: idle)
  MemoryTrimmer trimmer_;
  std::set<std::string, std::less<>> traced_vhosts_;
  GlobalParameters global_parameters_;
  std::string node_name_ = "warren@localhost";
};

}  // namespace warren::broker
