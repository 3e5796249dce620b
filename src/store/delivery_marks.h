// Which recovered messages had been delivered before a clean stop.
//
// RabbitMQ sets redelivered=true after a restart only on messages that had been delivered (its
// queue index records deliveries). Warren does not journal deliveries (that would cost a write per
// delivery). Instead, a clean stop writes the ids of the messages then flagged redelivered (every
// unacked delivery is requeued, and so flagged, when its channel closes) to
// DATA_DIR/msgs/delivered.marks; the next start reads and deletes it. Without the file -- after
// a crash -- every recovered message is flagged redelivered, since any of them may have been
// delivered.
//
// Format: "WRNDLV01" | u64 count | count x (u64 queue id, u64 msg id) | u32 crc32c of all before.
#pragma once

#include <boost/unordered/unordered_flat_set.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace warren::store {

struct DeliveryMark {
  uint64_t queue_id = 0;
  uint64_t msg_id = 0;
};

class DeliveryMarks {
 public:
  // Writes the file (to a temporary name, fsynced, then renamed into place and the directory
  // fsynced), so a crash leaves either no file or a complete one.
  static std::error_code save(const std::string& journal_dir, const std::vector<DeliveryMark>& marks);
  // Reads and deletes the file. nullopt when there is none (or it is damaged: then it is treated
  // as absent, the conservative answer).
  static std::optional<DeliveryMarks> take(const std::string& journal_dir);

  bool delivered(uint64_t queue_id, uint64_t msg_id) const {
    return set_.contains(std::pair{queue_id, msg_id});
  }
  size_t size() const { return set_.size(); }

 private:
  boost::unordered_flat_set<std::pair<uint64_t, uint64_t>> set_;
};

}  // namespace warren::store
