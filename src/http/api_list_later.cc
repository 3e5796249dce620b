// reply_list_later: long lists (100,000 queues) answered without pausing the message path. The
// event loop only builds items, a slice of about kSliceBudget per turn (deliveries and other
// requests run between slices); the pure JSON work (filter, sort, page, columns, serialise)
// runs on the management worker thread, and the finished response goes back to the loop to be
// written.
//
// Thread rule: the step function (which reads the broker) is called and destroyed on the loop
// only. The worker gets the items' JSON and the target, nothing of the broker.
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
  ListStep step;
  Finish finish;
  asio::io_context& io;
  asio::thread_pool& worker;
  ListOut out;
};

// Loop: one slice of items; then the next turn, or the worker once the list is complete.
void build_slice(std::unique_ptr<ListJob> job) {
  if (!job->step(job->out, std::chrono::steady_clock::now() + kSliceBudget)) {
    asio::io_context& io = job->io;
    asio::post(io, [job = std::move(job)]() mutable { build_slice(std::move(job)); });
    return;
  }
  asio::io_context& io = job->io;
  asio::thread_pool& worker = job->worker;
  Target target = std::move(job->target);
  ListOut out = std::move(job->out);
  Finish finish = std::move(job->finish);
  job.reset();  // the step (and whatever it holds of the broker) goes here, on the loop
  asio::post(worker, [&io, target = std::move(target), out = std::move(out),
                      finish = std::move(finish)]() mutable {
    Response r;
    reply_list(target, std::move(out.items), r, out.left_out);
    asio::post(io, [finish = std::move(finish), r = std::move(r)]() mutable {
      finish(std::move(r));
    });
  });
}

}  // namespace

void reply_list_later(ApiCall& c, ListStep step) {
  auto job = std::make_unique<ListJob>(
      ListJob{c.target, std::move(step), c.responder.later(), c.loop.io, c.loop.worker, {}});
  build_slice(std::move(job));
}

}  // namespace warren::http
