// Global runtime parameters in the management API, as RabbitMQ 3.10.8's
// (rabbit_mgmt_wm_global_parameter(s); policymakers and administrators only, else 401 "User not
// authorised to access object"):
//   GET /api/global-parameters                  [{"name", "value"}, ...] by name
//   GET|PUT|DELETE /api/global-parameters/{name}
// PUT takes {"value": any JSON} (a "name" in the body is ignored: the path names it) and
// answers 201 for a new parameter, 204 for a replaced one; a missing value is 400
// "[{key_missing,value}]". GET and DELETE of a parameter that is not set are 404.
#include "http/api_call.h"

namespace warren::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

void put_global_parameter(ApiCall& c, const std::string& name) {
  Response& r = c.r;
  auto body = json_body(c.req, r);
  if (!body) return;
  const json::value* value = body->if_contains("value");
  if (value == nullptr)
    return reply_error(r, bhttp::status::bad_request, "bad_request", "[{key_missing,value}]");
  const bool existed = c.broker.global_parameter(name) != nullptr;
  if (auto s = c.broker.set_global_parameter(name, *value)) return reply_broker_error(r, *s);
  no_content(r, existed ? bhttp::status::no_content : bhttp::status::created);
}

}  // namespace

void handle_global_parameters(ApiCall& c) {
  Response& r = c.r;
  const auto& seg = c.seg();
  if (!c.administrator && !has_tag(c.user, "policymaker"))
    return reply_error(r, bhttp::status::unauthorized, "not_authorised",
                       "User not authorised to access object");
  if (seg.size() == 1) {
    if (c.method() != bhttp::verb::get) return method_not_allowed(r);
    json::array items;
    for (const auto& [name, value] : c.broker.list_global_parameters())
      items.push_back(json::object{{"name", name}, {"value", value}});
    return reply_list(c.target, std::move(items), r);
  }
  if (seg.size() != 2) return not_found(r);
  const std::string& name = seg[1];
  if (c.method() == bhttp::verb::put) return put_global_parameter(c, name);
  if (c.method() == bhttp::verb::get) {
    const json::value* value = c.broker.global_parameter(name);
    if (value == nullptr) return not_found(r);
    // RabbitMQ's field order for one parameter (rabbit_mgmt_format:parameter).
    return reply_json(r, bhttp::status::ok, json::object{{"value", *value}, {"name", name}});
  }
  if (c.method() == bhttp::verb::delete_) {
    if (c.broker.global_parameter(name) == nullptr) return not_found(r);
    if (auto s = c.broker.clear_global_parameter(name)) return reply_broker_error(r, *s);
    return no_content(r);
  }
  method_not_allowed(r);
}

}  // namespace warren::http
