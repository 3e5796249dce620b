#include "broker/ready_messages.h"

#include <memory>

#include "broker/memory_trimmer.h"

namespace warren::broker {

void ReadyMessages::clear(MemoryTrimmer* trimmer) {
  if (trimmer == nullptr || size_ == 0) return clear();
  // The old levels go to the trimmer whole; this container starts over with empty ones.
  auto old = std::make_shared<std::vector<std::deque<QueuedMessage>>>(std::move(levels_));
  levels_ = std::vector<std::deque<QueuedMessage>>(old->size());
  nonempty_ = {};
  add_size(-static_cast<int64_t>(size_));
  mark_ = 0;
  trimmer->dispose([old](uint64_t budget) -> uint64_t {
    // A message costs its slot in the deque, and the message itself while its body is in RAM
    // (counted even when another queue still shares it: the step then frees less).
    uint64_t freed = 0;
    for (auto& l : *old) {
      if (l.empty()) continue;
      while (!l.empty() && freed < budget) {
        const MessageRef& m = l.front().msg;
        freed += sizeof(QueuedMessage) + (m ? sizeof(Message) + m->body_size() : 0);
        l.pop_front();
      }
      if (!l.empty()) break;  // this step's budget is spent
      std::deque<QueuedMessage>().swap(l);  // its map and last block too
    }
    return freed;
  });
}

}  // namespace warren::broker
