// What every management API handler works with: the parsed request (path segments after /api,
// query parameters), the authenticated user and what its tags allow, and the response; plus the
// helpers for RabbitMQ's reply shapes (errors, 201/204, pagination of lists).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "auth/user_store.h"
#include "broker/broker.h"
#include "http/http_server.h"
#include "http/management_api.h"

namespace warren::http {

struct Target {
  std::vector<std::string> segments;  // percent-decoded, after "/api"
  std::vector<std::pair<std::string, std::string>> query;
  std::optional<std::string> param(std::string_view key) const;
  bool flag(std::string_view key) const { return param(key) == std::optional<std::string>("true"); }
};

// nullopt for a target outside /api or with bad percent-encoding.
std::optional<Target> parse_target(std::string_view target);
// (user, password) of an "Authorization: Basic ..." header.
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view header);

struct ApiCall {
  broker::Broker& broker;
  const ManagementInfo& info;
  const Request& req;
  const Target& target;
  const auth::User& user;
  bool administrator = false;
  bool monitoring = false;  // monitoring or administrator: sees everything
  Response& r;

  const std::vector<std::string>& seg() const { return target.segments; }
  boost::beast::http::verb method() const { return req.method(); }
  // A vhost the user may see: all for monitoring, else those it has permissions in.
  bool visible(const std::string& vhost) const;
};

void reply_json(Response& r, boost::beast::http::status status, const boost::json::value& body);
void reply_error(Response& r, boost::beast::http::status status, std::string_view error,
                 std::string_view reason);
void not_found(Response& r);
void not_administrator(Response& r);
void method_not_allowed(Response& r);
void no_content(Response& r,
                boost::beast::http::status status = boost::beast::http::status::no_content);
// A broker error on a write: 404 for a missing object, else 400 with its text.
void reply_broker_error(Response& r, const broker::Error& e);
// Lists: applies name/use_regex filtering, sort/sort_reverse and page/page_size as RabbitMQ
// does and writes the reply (a plain array without `page`).
void reply_list(const Target& t, boost::json::array items, Response& r);
// The same reply for a list whose items are costly to build (queues): with the default sort by
// name and a page asked for, only the names are filtered and sorted and only the page's items
// are built, so a page of 100 out of 100,000 queues costs about the names' sort. Any other
// request builds every item (build(i) for i in order) and answers as reply_list.
void reply_list_by_name(const Target& t, const std::vector<std::string_view>& names,
                        const std::function<boost::json::value(size_t)>& build, Response& r);
// The request body as a JSON object ({} when empty); nullopt after replying 400 not_json.
std::optional<boost::json::object> json_body(const Request& req, Response& r);
bool json_bool(const boost::json::object& o, std::string_view key, bool def);
std::string json_string(const boost::json::object& o, std::string_view key,
                        std::string_view def = "");

bool has_tag(const auth::User& u, std::string_view tag);
boost::json::array tags_json(const auth::User& u);

// The resource handlers (one file each); each answers every request under its first segment.
void handle_overview(ApiCall& c);     // overview, whoami, aliveness-test, health (api_overview.cc)
void handle_vhosts(ApiCall& c);       // api_vhosts.cc
void handle_users(ApiCall& c);        // users, permissions (api_users.cc)
void handle_queues(ApiCall& c);       // api_queues.cc
void handle_exchanges(ApiCall& c);    // api_exchanges.cc
void handle_bindings(ApiCall& c);     // api_exchanges.cc
void handle_queue_bindings(ApiCall& c, broker::VHost& vh, const std::string& queue);
void handle_permissions(ApiCall& c);  // permissions, policies (api_permissions.cc)
void handle_connections(ApiCall& c);  // connections, channels, consumers (api_connections.cc)
// .../publish, .../get, .../contents under exchanges and queues; false if not one of those.
bool handle_messages(ApiCall& c);     // api_messages.cc
void handle_definitions(ApiCall& c);  // api_definitions.cc

}  // namespace warren::http
