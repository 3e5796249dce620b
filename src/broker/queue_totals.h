// Running sums over a vhost's live queues, kept as the queues change, so that /api/overview
// and Prometheus read three numbers instead of walking 100,000 queues. A queue adds itself when
// its vhost takes it (Queue::count_into) and takes itself out when deleted (mark_deleted).
#pragma once

#include <cstdint>

namespace warren::broker {

struct QueueTotals {
  int64_t ready = 0;      // messages ready for delivery
  int64_t ready_bytes = 0;  // their body bytes
  int64_t unacked = 0;    // delivered, not yet acknowledged
  int64_t consumers = 0;
};

}  // namespace warren::broker
