// Field tables (queue/exchange/binding arguments) as JSON, the way RabbitMQ's definitions, its
// HTTP API and rabbitmqctl's JSON formatter show them.
#pragma once

#include <boost/json.hpp>

#include "common/field_table.h"

namespace warren {

boost::json::value to_json(const FieldValue& v);
boost::json::object to_json(const FieldTable& t);
// Integers become signed 64-bit ('l'), strings long strings ('S'), objects tables.
FieldValue field_from_json(const boost::json::value& v);
FieldTable table_from_json(const boost::json::value& v);  // non-objects: empty

}  // namespace warren
