// Long replies (100,000 queues) without pausing the message path. The event loop does the work
// that reads the broker a slice of about kSliceBudget (1 ms) per turn (deliveries and other requests
// run between slices); work that needs only JSON (sorting by a field, serialising a list built
// whole) runs on the management worker thread, and the finished response goes back to the loop
// to be written.
//
// Thread rule: steps and completions (which read the broker) are called and destroyed on the
// loop only. The worker gets the items' JSON and the target, nothing of the broker.
#include <chrono>
#include <memory>

#include <boost/asio/post.hpp>

#include "http/api_call.h"

namespace warren::http {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// A client's request waits behind up to two slices (Asio polls sockets between queued
// handlers), so a round trip is delayed by at most a few milliseconds.
constexpr auto kSliceBudget = std::chrono::microseconds(1000);

struct SlicedJob {
  std::function<bool(Deadline)> step;
  std::function<void(Finish)> then;  // on the loop, after the last step
  Finish finish;
  asio::io_context& io;
};

void run_slice(std::unique_ptr<SlicedJob> job) {
  if (!job->step(std::chrono::steady_clock::now() + kSliceBudget)) {
    asio::io_context& io = job->io;
    asio::post(io, [job = std::move(job)]() mutable { run_slice(std::move(job)); });
    return;
  }
  auto then = std::move(job->then);
  Finish finish = std::move(job->finish);
  job.reset();
  then(std::move(finish));
}

void run_sliced(ApiCall& c, std::function<bool(Deadline)> step,
                std::function<void(Finish)> then) {
  run_slice(std::make_unique<SlicedJob>(
      SlicedJob{std::move(step), std::move(then), c.responder.later(), c.loop.io}));
}

}  // namespace

void reply_later(ApiCall& c, std::function<bool(Deadline)> step,
                 std::function<void(Response&)> done) {
  run_sliced(c, std::move(step), [done = std::move(done)](Finish finish) {
    Response r;
    done(r);
    finish(std::move(r));
  });
}

void reply_list_later(ApiCall& c, ListStep step) {
  auto out = std::make_shared<ListOut>();
  asio::io_context& io = c.loop.io;
  asio::thread_pool& worker = c.loop.worker;
  run_sliced(
      c, [out, step = std::move(step)](Deadline d) { return step(*out, d); },
      [out, target = c.target, &io, &worker](Finish finish) mutable {
        asio::post(worker, [&io, target = std::move(target), list = std::move(*out),
                            finish = std::move(finish)]() mutable {
          Response r;
          reply_list(target, std::move(list.items), r, list.left_out);
          asio::post(io, [finish = std::move(finish), r = std::move(r)]() mutable {
            finish(std::move(r));
          });
        });
      });
}

}  // namespace warren::http
