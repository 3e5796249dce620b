#include "http/queue_walk.h"

#include <iterator>
#include <set>
#include <string_view>

namespace warren::http {

namespace {

using Names = std::set<std::string_view>;

// One vhost's position within a turn (its iterators are valid until the turn ends).
struct Cursor {
  const broker::VHost* vh;
  size_t source;
  Names::const_iterator next, end;            // forward
  Names::const_reverse_iterator rnext, rend;  // reverse
  std::optional<std::string_view> last;       // visited this turn
  bool reverse;

  bool done() const { return reverse ? rnext == rend : next == end; }
  std::string_view name() const { return reverse ? *rnext : *next; }
  void advance() {
    last = name();
    if (reverse)
      ++rnext;
    else
      ++next;
  }
};

}  // namespace

QueueWalk::QueueWalk(std::vector<std::string> vhosts, bool reverse) : reverse_(reverse) {
  for (std::string& v : vhosts) sources_.push_back({std::move(v), std::nullopt});
  if (reverse_) std::reverse(sources_.begin(), sources_.end());  // ties: the later vhost first
}

bool QueueWalk::step(broker::Broker& broker, Deadline deadline, const Visit& visit) {
  std::vector<Cursor> cursors;
  for (size_t i = 0; i < sources_.size(); ++i) {
    const broker::VHost* vh = broker.find_vhost(sources_[i].vhost);
    if (vh == nullptr) continue;  // deleted meanwhile
    const Names& names = vh->queue_names();
    const std::optional<std::string>& last = sources_[i].last;
    Cursor c{vh, i, names.begin(), names.end(), names.rbegin(), names.rend(), std::nullopt,
             reverse_};
    if (last && reverse_) c.rnext = std::make_reverse_iterator(names.lower_bound(*last));
    if (last && !reverse_) c.next = names.upper_bound(*last);
    cursors.push_back(c);
  }
  size_t n = 0;
  for (;;) {
    Cursor* best = nullptr;
    for (Cursor& c : cursors)  // ties keep the earlier source
      if (!c.done() && (best == nullptr || (reverse_ ? c.name() > best->name()
                                                     : c.name() < best->name())))
        best = &c;
    if (best == nullptr) return true;
    const broker::VHost& vh = *best->vh;
    const broker::Queue& q = *vh.queues().find(best->name())->second;
    best->advance();
    if (!visit(vh, q)) return true;
    if (slice_spent(++n, deadline)) {
      for (const Cursor& c : cursors)
        if (c.last) sources_[c.source].last = std::string(*c.last);
      return false;
    }
  }
}

}  // namespace warren::http
