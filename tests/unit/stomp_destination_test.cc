// STOMP destinations and names as RabbitMQ maps them (stomp/destination.h, stomp/names.h).
#include <gtest/gtest.h>

#include "stomp/destination.h"
#include "stomp/names.h"

namespace warren::stomp {
namespace {

TEST(StompDestination, MapsEachKindToAnExchangeAndKey) {
  auto q = parse_destination("/queue/a%2Fb");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->kind, DestinationKind::kQueue);
  EXPECT_EQ(q->exchange(), "");
  EXPECT_EQ(q->routing_key(), "a/b");
  auto t = parse_destination("/topic/x.y");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->exchange(), "amq.topic");
  EXPECT_EQ(t->routing_key(), "x.y");
  auto e = parse_destination("/exchange/amq.direct/k");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->exchange(), "amq.direct");
  EXPECT_EQ(e->routing_key(), "k");
  auto f = parse_destination("/exchange/amq.fanout");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->routing_key(), "");
  auto a = parse_destination("/amq/queue/existing");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, DestinationKind::kAmqQueue);
  auto r = parse_destination("/reply-queue/amq.gen-a/b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, DestinationKind::kReplyQueue);
  EXPECT_EQ(r->name, "amq.gen-a/b");
  auto bare = parse_destination("plain");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->kind, DestinationKind::kQueue);
  EXPECT_EQ(parse_destination("/temp-queue/t")->kind, DestinationKind::kTempQueue);
}

TEST(StompDestination, ErrorsHaveRabbitmqTexts) {
  auto unknown = parse_destination("/bogus/x");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "Unknown destination");
  EXPECT_EQ(unknown.error().detail,
            "'/bogus/x' is not a valid destination.\nValid destination types are: /temp-queue, "
            "/exchange, /topic, /queue, /amq/queue, /reply-queue/.\n");
  EXPECT_EQ(parse_destination("/queue/").error().detail, "'/' is not a valid queue destination\n");
  EXPECT_EQ(parse_destination("/queue/a/b").error().detail,
            "'/a/b' is not a valid queue destination\n");
  EXPECT_EQ(parse_destination("/exchange//k").error().detail,
            "'//k' is not a valid exchange destination\n");
}

TEST(StompDestination, FormatsADeliveryDestination) {
  EXPECT_EQ(format_destination("", "q"), "/queue/q");
  EXPECT_EQ(format_destination("amq.topic", "a.b"), "/topic/a.b");
  EXPECT_EQ(format_destination("amq.direct", "k/z"), "/exchange/amq.direct/k%2Fz");
  EXPECT_EQ(format_destination("amq.fanout", ""), "/exchange/amq.fanout");
  EXPECT_EQ(format_destination("", "50%\x01\xc3"), "/queue/50%25%01%C3");
}

TEST(StompNames, DurableSubscriptionQueueIsNamedAsRabbitmqNamesIt) {
  // Seen on RabbitMQ 3.10.8: SUBSCRIBE /topic/dur.key with id:dsub and durable:true.
  EXPECT_EQ(durable_subscription_queue("dur.key", "dsub"),
            "stomp-subscription-kpmeopwk5V2EZOdCUKop5A");
  EXPECT_TRUE(random_subscription_queue().starts_with("stomp-subscription-"));
  EXPECT_EQ(new_session_id().size(), std::string("session-").size() + 22);
}

TEST(StompNames, MessageIds) {
  EXPECT_EQ(message_id("T_s", "session-x", 7), "T_s@@session-x@@7");
  auto p = parse_message_id("T_s@@session-x@@7");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->consumer_tag, "T_s");
  EXPECT_EQ(p->delivery_tag, 7u);
  EXPECT_FALSE(parse_message_id("garbage"));
  EXPECT_FALSE(parse_message_id("a@@b@@c@@d"));
  EXPECT_EQ(parse_message_id("a@@b@@c")->delivery_tag, std::nullopt);
}

}  // namespace
}  // namespace warren::stomp
