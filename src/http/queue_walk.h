// The queues of some vhosts in name order, merged across the vhosts (ties in vhost order, or
// the reverse for sort_reverse), visited over as many event-loop turns as it takes. A turn ends
// after a queue and the next resumes after that name in each vhost's name index, so no iterator
// is held across turns: queues declared or deleted in between are simply seen or not, as in any
// listing of a live broker.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "http/api_call.h"

namespace warren::http {

class QueueWalk {
 public:
  // visit(vhost, queue) returns false to stop the walk early.
  using Visit = std::function<bool(const broker::VHost&, const broker::Queue&)>;

  QueueWalk(std::vector<std::string> vhosts, bool reverse);
  // Visits queues until the deadline; true once the walk is over (every queue visited, or
  // visit asked to stop).
  bool step(broker::Broker& broker, Deadline deadline, const Visit& visit);

 private:
  struct Source {
    std::string vhost;
    std::optional<std::string> last;  // the last name visited in this vhost
  };
  std::vector<Source> sources_;
  bool reverse_;
};

}  // namespace warren::http
