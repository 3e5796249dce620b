#include "broker/confirm_tracker.h"

namespace warren::broker {

void ConfirmTracker::published(uint64_t tag, const PublishOutcome& outcome) {
  if (outcome.nack()) {
    pending_.push_back(Pending{tag, 0, Pending::kFailed});
  } else if (outcome.journal_seq != 0) {
    pending_.push_back(Pending{tag, outcome.journal_seq, Pending::kWaiting});
    waits_for_seq_ = outcome.journal_seq;
  }
}

bool ConfirmTracker::journal_synced(const store::Completion& c) {
  bool resolved = false;
  for (Pending& p : pending_) {
    if (p.state != Pending::kWaiting) continue;
    if (p.journal_seq > c.last_seq) break;
    p.state = c.error ? Pending::kFailed : Pending::kSynced;
    resolved = true;
  }
  return resolved;
}

}  // namespace warren::broker
