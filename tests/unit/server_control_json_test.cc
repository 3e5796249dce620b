// Arguments as JSON for warrenctl and definitions files: the AMQP table survives the trip to
// RabbitMQ's JSON and back (integers as signed 64-bit, strings, booleans, nested tables, arrays).
#include <gtest/gtest.h>

#include "broker/field_table_json.h"

namespace warren::server {
namespace {

TEST(ControlJson, TableRoundTrip) {
  FieldTable inner;
  inner.set("k", FieldValue(std::string("v")));
  FieldTable t;
  t.set("x-max-length", FieldValue(int64_t{10}));
  t.set("x-queue-mode", FieldValue(std::string("lazy")));
  t.set("flag", FieldValue(true));
  t.set("ratio", FieldValue(0.5));
  t.set("nested", FieldValue(inner));
  t.set("list", FieldValue(FieldArray{FieldValue(int64_t{1}), FieldValue(std::string("a"))}));
  boost::json::object j = to_json(t);
  EXPECT_EQ(boost::json::serialize(j),
            R"({"x-max-length":10,"x-queue-mode":"lazy","flag":true,"ratio":5E-1,)"
            R"("nested":{"k":"v"},"list":[1,"a"]})");
  EXPECT_EQ(table_from_json(j), t);
}

TEST(ControlJson, SmallIntegersBecomeJsonNumbers) {
  FieldTable t;
  t.set("a", FieldValue(int32_t{-3}));
  t.set("b", FieldValue(uint8_t{7}));
  EXPECT_EQ(boost::json::serialize(to_json(t)), R"({"a":-3,"b":7})");
}

TEST(ControlJson, NonObjectIsAnEmptyTable) {
  EXPECT_TRUE(table_from_json(boost::json::value(3)).empty());
  EXPECT_TRUE(table_from_json(boost::json::array()).empty());
}

}  // namespace
}  // namespace warren::server
