// What every management API handler works with: the parsed request (path segments after /api,
// query parameters), the authenticated user and what its tags allow, and the response; plus the
// helpers for RabbitMQ's reply shapes (errors, 201/204, pagination of lists).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "auth/erlang_regex.h"
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

// Where a handler may go on after it returns: the event loop, to build a long reply a slice per
// loop turn, and a worker thread, to parse, sort and serialise JSON off the loop.
struct ApiLoop {
  boost::asio::io_context& io;
  boost::asio::thread_pool& worker;
};

struct ApiCall {
  broker::Broker& broker;
  ApiLoop& loop;
  Responder& responder;  // later(): answer after returning; the request stays valid until then
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
// The same with a body already serialised.
void reply_json_text(Response& r, boost::beast::http::status status, std::string body);
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
// `left_out`: items already dropped by the name filter (they count in total_count).
void reply_list(const Target& t, boost::json::array items, Response& r, size_t left_out = 0);
// A list request's name filter (name, use_regex): a substring, or an Erlang-dialect regex.
struct NameFilter {
  std::string text;
  std::optional<auth::ErlangRegex> regex;
  bool empty() const { return text.empty(); }
  bool matches(std::string_view name) const;
};
// nullopt after replying 400 to a regex that does not compile.
std::optional<NameFilter> name_filter(const Target& t, Response& r);
// columns=name,message_stats.publish: an item keeps only those keys (a dotted key keeps that
// path of a nested object), as rabbit_mgmt_util:columns.
using Columns = std::vector<std::vector<std::string>>;
Columns parse_columns(const std::string& columns);
void keep_columns(const Columns& columns, boost::json::value& item);
// A paged reply (page, page_size, filtered_count, ...) over `filtered` items; item(i) gives the
// i-th and is asked only for the page's (a null item is left out). 400 past the last page.
void reply_page(const Target& t, int64_t page, int64_t page_size, size_t filtered, size_t total,
                const std::function<boost::json::value(size_t)>& item, Response& r);
// The page and page size a paged list request asks for; false after replying 400.
bool read_paging(const Target& t, int64_t* page, int64_t* page_size, Response& r);

using Deadline = std::chrono::steady_clock::time_point;
// For a step's loop: true when the deadline has passed, looked at every 16th item (`done`
// counts the items so far) so that the clock is not read per item.
inline bool slice_spent(size_t done, Deadline deadline) {
  return (done & 15) == 0 && std::chrono::steady_clock::now() > deadline;
}
// Answers after work too long for one event-loop turn (api_list_later.cc): `step` is called
// once per loop turn with about 1 ms to spend until it returns true; then `done` writes the
// response. Both run on the loop.
void reply_later(ApiCall& c, std::function<bool(Deadline)> step,
                 std::function<void(Response&)> done);
// Builds a list too long for one event-loop turn (100,000 queues): each call appends items to
// `out.items` (or counts in `out.left_out` those it already found not to match the name filter)
// until `deadline` and says whether the list is complete. It runs on the event loop, and
// must not keep iterators across calls (the broker changes in between): resume by name.
struct ListOut {
  boost::json::array items;
  size_t left_out = 0;
};
using ListStep = std::function<bool(ListOut& out, Deadline deadline)>;
// Answers like reply_list without stalling the event loop (api_list_later.cc): `step` is called
// once per loop turn with about 1 ms to spend; filtering, sorting, paging and serialisation run
// on the worker thread.
void reply_list_later(ApiCall& c, ListStep step);
// reply_list_later over a snapshot taken now (references, names): add(item, out) appends the
// JSON of an item that still exists.
template <class T, class Add>
void reply_snapshot_later(ApiCall& c, std::vector<T> snapshot, Add add) {
  reply_list_later(c, [snapshot = std::move(snapshot), next = size_t{0},
                       add = std::move(add)](ListOut& out, Deadline deadline) mutable {
    while (next < snapshot.size()) {
      add(snapshot[next++], out.items);
      if (slice_spent(next, deadline)) return false;
    }
    return true;
  });
}
// The request body as a JSON object ({} when empty); nullopt after replying 400 not_json.
std::optional<boost::json::object> json_body(const Request& req, Response& r);
bool json_bool(const boost::json::object& o, std::string_view key, bool def);
std::string json_string(const boost::json::object& o, std::string_view key,
                        std::string_view def = "");

bool has_tag(const auth::User& u, std::string_view tag);
boost::json::array tags_json(const auth::User& u);

// The resource handlers (one file each); each answers every request under its first segment.
void handle_overview(ApiCall& c);     // overview, whoami, aliveness-test, nodes (api_overview.cc)
void handle_health(ApiCall& c);       // health/checks/..., healthchecks/node (api_health.cc)
void handle_vhosts(ApiCall& c);       // api_vhosts.cc
void handle_users(ApiCall& c);        // users, permissions (api_users.cc)
void handle_queues(ApiCall& c);       // api_queues.cc
void handle_exchanges(ApiCall& c);    // api_exchanges.cc
void handle_bindings(ApiCall& c);     // api_exchanges.cc
void handle_queue_bindings(ApiCall& c, broker::VHost& vh, const std::string& queue);
void handle_permissions(ApiCall& c);  // permissions, policies (api_permissions.cc)
void handle_topic_permissions(ApiCall& c);  // topic-permissions (api_topic_permissions.cc)
void handle_global_parameters(ApiCall& c);  // global-parameters (api_global_parameters.cc)
void handle_connections(ApiCall& c);  // connections, channels, consumers (api_connections.cc)
// .../publish, .../get, .../contents under exchanges and queues; false if not one of those.
bool handle_messages(ApiCall& c);     // api_messages.cc
void handle_definitions(ApiCall& c);  // api_definitions.cc

}  // namespace warren::http
