// The broker's single timer for queue wakeups (message TTL, x-expires): entries of deleted queues
// and superseded wakeups do not pile up until they are due.
#include <gtest/gtest.h>

#include <string>

#include <boost/asio/io_context.hpp>

#include "broker/broker.h"
#include "broker/vhost.h"

namespace warren::broker {
namespace {

TEST(BrokerWakeupsTest, DeletedQueuesDoNotKeepTheirWakeups) {
  boost::asio::io_context io;
  Broker broker(io, Limits{}, auth::UserStore{}, nullptr);
  VHost& vhost = broker.add_vhost("/");
  // RPC-style temporary queues with an hour of x-expires, each deleted right after use: without
  // dropping stale entries the heap would hold all of them (and their queues) for an hour.
  for (int i = 0; i < 10000; ++i) {
    QueueDeclare d;
    std::string name = "tmp-" + std::to_string(i);
    d.name = name;
    d.arguments.set("x-expires", FieldValue(int32_t{3600000}));
    ASSERT_TRUE(vhost.declare_queue(d, 1));
    ASSERT_TRUE(vhost.delete_queue(name, false, false, 1));
  }
  EXPECT_LT(broker.pending_wakeups(), 2048u);
  EXPECT_GE(broker.pending_wakeups(), 1u);  // the positive control: wakeups were scheduled

  // A live queue keeps its wakeup through any number of compactions.
  QueueDeclare live;
  live.name = "live";
  live.arguments.set("x-expires", FieldValue(int32_t{3600000}));
  ASSERT_TRUE(vhost.declare_queue(live, 1));
  for (int i = 0; i < 5000; ++i) {
    QueueDeclare d;
    std::string name = "more-" + std::to_string(i);
    d.name = name;
    d.arguments.set("x-expires", FieldValue(int32_t{3600000}));
    ASSERT_TRUE(vhost.declare_queue(d, 1));
    ASSERT_TRUE(vhost.delete_queue(name, false, false, 1));
  }
  EXPECT_LT(broker.pending_wakeups(), 2048u);
  Queue* q = vhost.find_queue("live");
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q->pending_wakeup(), 0u);
}

}  // namespace
}  // namespace warren::broker
