// Retained messages (MQTT 3.1.1 section 3.3.1.3): the last retained PUBLISH of each topic, per
// vhost, given to every new subscription whose filter matches it. They live in memory and in
// DATA_DIR/mqtt_retained.db (SQLite, WAL): each change is committed at once without an fsync
// (a killed broker keeps them; a power cut may lose the last moments, as RabbitMQ's DETS store
// that syncs every 2 s), and every one is loaded at start.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace warren::mqtt {

struct RetainedMessage {
  uint8_t qos = 0;
  std::string payload;
  // MQTT 5.0: the publish's properties to hand on (a property list without its length, Message
  // Expiry Interval excluded), and when the message expires (wall-clock ms; 0 = never).
  std::string properties;
  uint64_t expires_at_ms = 0;
};

class RetainedStore {
 public:
  // Opens or creates DIR/mqtt_retained.db and loads it. An empty dir keeps them in memory only.
  static Result<std::unique_ptr<RetainedStore>, std::string> open(const std::string& dir);
  ~RetainedStore();

  // Keeps `payload` as the topic's retained message; an empty payload clears it. A failed write
  // is logged and the message is kept in memory (it is lost at the next restart).
  void retain(std::string_view vhost, std::string_view topic, uint8_t qos,
              std::string_view payload, std::string_view properties = {},
              uint64_t expires_at_ms = 0);
  // Calls f(topic, message) for each retained message of the vhost that `filter` matches and
  // that has not expired.
  void for_each_match(std::string_view vhost, std::string_view filter,
                      const std::function<void(const std::string&, const RetainedMessage&)>& f)
      const;
  size_t size() const;

 private:
  RetainedStore() = default;
  bool prepare(std::string* error);
  void load();

  using Topics = std::map<std::string, RetainedMessage, std::less<>>;
  std::map<std::string, Topics, std::less<>> by_vhost_;
  struct Closer {
    void operator()(sqlite3* db) const;
    void operator()(sqlite3_stmt* s) const;
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::unique_ptr<sqlite3_stmt, Closer> upsert_, erase_;
};

}  // namespace warren::mqtt
