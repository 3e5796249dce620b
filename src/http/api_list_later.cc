// reply_list_later: long lists (100,000 queues) answered without pausing the message path. The
// event loop only takes the snapshot and builds items, a slice of about kSliceBudget per turn
// (deliveries and other requests run between slices); the pure JSON work (filter, sort, page,
// columns, serialise) runs on the management worker thread, and the finished response goes back
// to the loop to be written.
//
// Thread rule: the snapshot (SlicedList::build and what it holds: non-atomic queue references)
// is created, used and destroyed on the loop. The worker touches only the items' JSON, the
// target and, on the by-name path, the name views while the loop leaves the job alone; every
// hop moves the job's only reference, so it is never released on the worker.
#include <algorithm>
#include <chrono>
#include <memory>

#include <boost/asio/post.hpp>

#include "http/api_call.h"

namespace warren::http {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr auto kSliceBudget = std::chrono::microseconds(2000);

struct ListJob {
  Target target;
  SlicedList list;
  Finish finish;
  asio::io_context& io;
  asio::thread_pool& worker;
  json::array items;            // built so far (every-item path)
  size_t next = 0;              // next index to build
  std::vector<size_t> order;    // by-name path: matching indexes in reply order
};
using Job = std::unique_ptr<ListJob>;

// Posts a move-only job to an executor (asio handlers must be copyable for std::function users;
// post accepts move-only handlers).
template <class Executor, class F>
void hop(Executor& ex, Job job, F f) {
  asio::post(ex, [job = std::move(job), f = std::move(f)]() mutable { f(std::move(job)); });
}

// A page sorted by name (the default sort) with a plain substring filter: only names are
// sorted and only the page's items are built.
bool by_name(const Target& t, const SlicedList& list) {
  auto name = t.param("name");
  return !list.names.empty() && t.param("sort").value_or("name") == "name" && t.param("page") &&
         !(name && !name->empty() && t.flag("use_regex"));
}

void respond(asio::io_context& io, Finish finish, Response r) {
  asio::post(io, [finish = std::move(finish), r = std::move(r)]() mutable {
    finish(std::move(r));
  });
}

// Worker: every item built; filter, sort, page and serialise, then answer on the loop.
void reply_built(asio::io_context& io, Target target, json::array items, Finish finish) {
  Response r;
  reply_list(target, std::move(items), r);
  respond(io, std::move(finish), std::move(r));
}

// Loop: builds items until the slice's budget is spent, then yields the loop.
void build_slice(Job job) {
  auto start = std::chrono::steady_clock::now();
  while (job->next < job->list.size) {
    json::value v = job->list.build(job->next++);
    if (!v.is_null()) job->items.push_back(std::move(v));
    if ((job->next & 15) == 0 && std::chrono::steady_clock::now() - start > kSliceBudget) {
      asio::io_context& io = job->io;
      return hop(io, std::move(job), build_slice);
    }
  }
  asio::io_context& io = job->io;
  asio::thread_pool& worker = job->worker;
  Target target = std::move(job->target);
  json::array items = std::move(job->items);
  Finish finish = std::move(job->finish);
  job.reset();  // the snapshot is released here, on the loop
  asio::post(worker, [&io, target = std::move(target), items = std::move(items),
                      finish = std::move(finish)]() mutable {
    reply_built(io, std::move(target), std::move(items), std::move(finish));
  });
}

// Loop: the names are sorted; build the page's items and answer.
void reply_named_page(Job job) {
  Response r;
  int64_t page = 0, page_size = 0;
  if (read_paging(job->target, &page, &page_size, r))
    reply_page(job->target, page, page_size, job->order.size(), job->list.size,
               [&job](size_t i) { return job->list.build(job->order[i]); }, r);
  Finish finish = std::move(job->finish);
  job.reset();
  finish(std::move(r));
}

// Worker: filter and sort the names (views into the snapshot's objects, which only the loop
// changes, and never their names).
void order_names(Job job) {
  const SlicedList& list = job->list;
  auto name = job->target.param("name");
  job->order.reserve(list.size);
  for (size_t i = 0; i < list.size; ++i)
    if (!name || name->empty() || list.names[i].find(*name) != std::string_view::npos)
      job->order.push_back(i);
  std::stable_sort(job->order.begin(), job->order.end(),
                   [&list](size_t a, size_t b) { return list.names[a] < list.names[b]; });
  if (job->target.flag("sort_reverse")) std::reverse(job->order.begin(), job->order.end());
  asio::io_context& io = job->io;
  hop(io, std::move(job), reply_named_page);
}

}  // namespace

void reply_list_later(ApiCall& c, SlicedList list) {
  bool named = by_name(c.target, list);
  if (named) {  // a bad page or page_size is answered at once
    int64_t page = 0, page_size = 0;
    if (!read_paging(c.target, &page, &page_size, c.r)) return;
  }
  auto job = std::make_unique<ListJob>(ListJob{c.target, std::move(list), c.responder.later(),
                                               c.loop.io, c.loop.worker, {}, 0, {}});
  if (named) return hop(c.loop.worker, std::move(job), order_names);
  job->items.reserve(job->list.size);
  build_slice(std::move(job));
}

}  // namespace warren::http
