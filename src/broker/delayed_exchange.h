// Delayed delivery: the exchange type `x-delayed-message` of RabbitMQ's community plugin
// rabbitmq-delayed-message-exchange, with its `x-delayed-type` argument (how the exchange routes
// once a message is due: direct, fanout, topic or headers) and the `x-delay` message header
// (milliseconds). As in the plugin:
//  - declaring without a string x-delayed-type is a 406 ("Invalid argument, 'x-delayed-type'
//    must be an existing exchange type"), x-delayed-type "x-delayed-message" too ("... can't be
//    used for 'x-delayed-type'"), and an unknown type is 503 "unknown exchange type 'T'";
//    x-delayed-type is not compared on redeclare (only alternate-exchange is);
//  - x-delay may be any integer type, a float or double (truncated) or a decimal string; a
//    message waits when 0 < x-delay <= 2^32-1 and is routed at once otherwise (no header, zero,
//    negative, too large, another type);
//  - a message that is due is routed from the exchange it waited in (through exchange-to-exchange
//    bindings too) and is not delayed again on the way; properties pass through unchanged (the
//    plugin's header swap does not reach AMQP 0-9-1 consumers either), and if nothing matches it
//    goes to the exchange's alternate exchange or is dropped.
// Where Warren differs (README "Delayed messages"): a mandatory publish that waits is not
// returned (the plugin always returns it as NO_ROUTE, and delivers it later anyway); a message
// that waits does not also go to the alternate exchange at once (plugin issue #36).
//
// What Warren adds: on a durable exchange a persistent message is journaled (message_journal.h)
// before its publish is confirmed, and comes back after a restart or a crash, due at the same
// wall-clock time (late ones at once); and memory stays bounded: the index keeps 24 bytes per
// message (delay_index.h) and bodies beyond a RAM budget live in the journal only, transient
// ones included, read back when they are due. One broker timer serves every delayed exchange.
#pragma once

#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/field_table.h"
#include "broker/delay_index.h"
#include "broker/error.h"
#include "broker/exchange.h"
#include "broker/message.h"
#include "broker/ref.h"
#include "store/group_commit.h"
#include "store/message_store.h"

namespace warren::broker {

class DelayStore;
class MessageJournal;
class VHost;

inline constexpr std::string_view kDelayedExchangeType = "x-delayed-message";
// The longest delay (Erlang's timer limit, which the plugin checks): 2^32-1 ms, about 49.7 days.
inline constexpr int64_t kMaxDelayMs = 4294967295;

// The x-delay header as the plugin reads it; nullopt when absent or of a type it ignores.
std::optional<int64_t> x_delay_of(const FieldTable& headers);
// Whether such a message waits (else it is routed at once).
inline bool waits(std::optional<int64_t> delay) {
  return delay && *delay > 0 && *delay <= kMaxDelayMs;
}

// The routing type an x-delayed-message exchange declared with these arguments has, or the
// plugin's error.
OpResult<ExchangeType> delayed_routing_type(const FieldTable& arguments);

// What one publish did at the delayed exchanges routing reached (VHost::route_from).
struct DelayedRouting {
  bool parsed = false;
  int64_t delay_ms = 0;
  std::vector<Exchange*> exchanges;  // where the message waits
  // x is a delayed exchange the message reached: true (x is recorded) if the message waits.
  bool take(Exchange* x, const FieldTable& headers) {
    if (!parsed) {
      std::optional<int64_t> d = x_delay_of(headers);
      delay_ms = waits(d) ? *d : 0;
      parsed = true;
    }
    if (delay_ms <= 0) return false;
    exchanges.push_back(x);
    return true;
  }
};

// The broker's one timer: calls s.wake_up() at (or soon after) at_ms on the steady clock.
class DelayTimer {
 public:
  virtual ~DelayTimer() = default;
  virtual void schedule_wakeup(DelayStore& s, uint64_t at_ms) = 0;
};

// Milliseconds since the Unix epoch: what a journaled due time is written in, so that it means
// the same after a restart.
uint64_t wall_now_ms();

// The messages waiting in one x-delayed-message exchange.
class DelayStore {
 public:
  // Journal queue id of durable delayed records (a range no queue id reaches; page-out ids are
  // above 2^62). The record body says which exchange (delayed_exchange.cc).
  static constexpr uint64_t kJournalId = uint64_t{1} << 61;
  // RAM budget per exchange, as a queue's: past it, bodies are in the journal only.
  static constexpr size_t kRamMessages = 20'000;
  static constexpr uint64_t kRamBytes = uint64_t{16} << 20;
  // Due messages routed per wakeup; the rest follow in the next turns of the event loop.
  static constexpr size_t kBatchMessages = 1'000;
  static constexpr uint64_t kBatchBytes = uint64_t{16} << 20;
  // While this much journal waits for the disk, due messages wait too (the connections are not
  // read then either; see Broker::kJournalHighWater).
  static constexpr uint64_t kJournalHighWater = uint64_t{64} << 20;

  // durable: persistent messages are journaled and survive restarts (a durable exchange with a
  // journal). journal, when set, also takes bodies past the RAM budget. timer may be null (then
  // nothing becomes due by itself: tests call wake_up_at()).
  static Ref<DelayStore> create(VHost* vhost, Exchange* exchange, bool durable,
                                MessageJournal* journal, DelayTimer* timer);
  static void destroy(DelayStore* s);

  struct Added {
    uint64_t journal_seq = 0;     // > 0: stored once the journal synced it (confirm waits)
    bool journal_failed = false;  // a persistent message could not be written: nack, not kept
  };
  Added add(const MessageRef& m, int64_t delay_ms);

  // Routes what is due (a batch; the rest at the next wakeup).
  void wake_up();
  void wake_up_at(uint64_t steady_ms);

  // The exchange is deleted: its messages go, journal records included.
  void discard_all();
  // The exchange is gone without a delete (the broker stops): forget everything in memory and
  // write nothing, so journaled messages come back at the next start.
  void detach();
  bool detached() const { return exchange_ == nullptr; }

  // Recovery: r is a record of kJournalId. find names the store of (vhost, exchange), if any.
  // False when the record is not adopted (the journal then drops it).
  static bool recover(const store::RecoveredMessage& r,
                      const std::function<DelayStore*(std::string_view vhost,
                                                      std::string_view exchange)>& find);

  // Journal sync reports for the records this store wrote.
  void journal_synced(const store::Completion& c);
  bool has_unsynced_records() const { return !unsynced_.empty(); }

  size_t size() const { return index_.size(); }
  size_t messages_in_ram() const { return ram_.size(); }
  uint64_t ram_bytes() const { return ram_bytes_; }
  const DelayIndex& index() const { return index_; }
  bool durable() const { return durable_; }

 private:
  template <class>
  friend class Ref;
  DelayStore(VHost* vhost, Exchange* exchange, bool durable, MessageJournal* journal,
             DelayTimer* timer);

  bool ram_full(uint64_t more_bytes) const {
    return ram_.size() >= kRamMessages || ram_bytes_ + more_bytes > kRamBytes;
  }
  void keep_in_ram(uint64_t id, const MessageRef& m);
  MessageRef take_from_ram(uint64_t id);
  // The body of a due entry: from RAM, else read back from the journal (null if unreadable).
  MessageRef body_of(const DelayEntry& e);
  // The entry left for good: its journal record is acked.
  void forget(const DelayEntry& e);
  std::string record_prefix(uint64_t due_wall_ms) const;
  void track_unsynced(uint64_t journal_seq, uint64_t id, bool page_out);
  void schedule_wakeup();
  void restore(uint64_t id, const store::Position& pos, uint64_t due_wall_ms);

  uint32_t refs_ = 0;
  VHost* vhost_;
  Exchange* exchange_;  // null once detached
  bool durable_;
  MessageJournal* journal_;
  DelayTimer* timer_;
  uint64_t page_id_ = 0;  // journal queue id of transient bodies paged out, set on first use
  DelayIndex index_;
  boost::unordered_flat_map<uint64_t, MessageRef> ram_;  // bodies in RAM, by entry id
  uint64_t ram_bytes_ = 0;
  struct Unsynced {
    uint64_t journal_seq;
    uint64_t id;
    bool page_out;  // a transient body written past the budget: leaves RAM once synced
  };
  std::deque<Unsynced> unsynced_;
  uint64_t wakeup_at_ = 0;  // steady ms of the wakeup already asked for (0: none)
};

}  // namespace warren::broker
