#include "cli/verbs.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "cli/control_client.h"
#include "cli/formatter.h"
#include "cli/verbs_parameters.h"
#include "cli/verbs_tenancy.h"

namespace warren::cli {

namespace json = boost::json;

namespace {

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> v = {
      {"list_queues", "list_queues [--vhost <vhost>] [--no-table-headers] [<column>, ...]",
       "Lists queues and their properties.",
       {"name", "messages"},
       {"arguments", "auto_delete", "consumers", "durable", "exclusive", "message_bytes",
        "message_bytes_ready", "messages", "messages_ram", "messages_ready",
        "messages_unacknowledged", "name", "policy", "state", "type", "vhost"},
       true},
      {"list_exchanges", "list_exchanges [--vhost <vhost>] [--no-table-headers] [<column>, ...]",
       "Lists exchanges",
       {"name", "type"},
       {"arguments", "auto_delete", "durable", "internal", "name", "policy", "type", "vhost"},
       true},
      {"list_bindings", "list_bindings [--vhost <vhost>] [--no-table-headers] [<column>, ...]",
       "Lists all bindings on a vhost",
       {"source_name", "source_kind", "destination_name", "destination_kind", "routing_key",
        "arguments"},
       {"arguments", "destination_kind", "destination_name", "routing_key", "source_kind",
        "source_name", "vhost"},
       true},
      {"list_connections", "list_connections [--no-table-headers] [<column>, ...]",
       "Lists AMQP 0.9.1 connections for the node",
       {"user", "peer_host", "peer_port", "state"},
       {"auth_mechanism", "channel_max", "channels", "client_properties", "connection_name",
        "frame_max", "host", "name", "peer_host", "peer_port", "pid", "port", "protocol", "ssl",
        "state", "timeout", "type", "user", "vhost"}},
      {"list_mqtt_connections", "list_mqtt_connections [--no-table-headers] [<column>, ...]",
       "Lists MQTT connections on the target node",
       {"client_id", "conn_name"},
       {"client_id", "conn_name", "host", "peer_host", "peer_port", "port", "protocol", "ssl",
        "state", "timeout", "user", "vhost"}},
      {"list_stomp_connections", "list_stomp_connections [--no-table-headers] [<column>, ...]",
       "Lists STOMP connections on the target node",
       {"conn_name", "user", "vhost"},
       {"conn_name", "host", "peer_host", "peer_port", "port", "protocol", "ssl", "state",
        "timeout", "user", "vhost"}},
      {"list_channels", "list_channels [--no-table-headers] [<column>, ...]",
       "Lists all channels in the node",
       {"pid", "user", "consumer_count", "messages_unacknowledged"},
       {"acks_uncommitted", "confirm", "connection", "consumer_count", "global_prefetch_count",
        "messages_unacknowledged", "messages_uncommitted", "messages_unconfirmed", "name",
        "number", "pid", "prefetch_count", "transactional", "user", "vhost"}},
      {"list_consumers", "list_consumers [--vhost <vhost>] [--no-table-headers] [<column>, ...]",
       "Lists all consumers for a vhost",
       {"queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active",
        "arguments"},
       {"active", "activity_status", "ack_required", "arguments", "channel_pid", "consumer_tag",
        "exclusive", "prefetch_count", "queue_name"},
       true},
      {"list_vhosts", "list_vhosts [--no-table-headers] [<column>, ...]",
       "Lists virtual hosts", {"name"}, {"cluster_state", "name", "tracing"}},
      {"list_users", "list_users [--no-table-headers]", "List user names and tags",
       {"user", "tags"}, {"tags", "user"}},
      {"purge_queue", "purge_queue [--vhost <vhost>] <queue>", "Purges a queue (removes all messages in it)"},
      {"delete_queue", "delete_queue [--vhost <vhost>] <queue_name> [--if-empty|-e] [--if-unused|-u]",
       "Deletes a queue"},
      {"close_connection", "close_connection <connection pid> <explanation>",
       "Instructs the broker to close the connection associated with the Erlang process id"},
      {"status", "status", "Displays status of a node"},
      {"await_startup", "await_startup [--timeout <timeout>]",
       "Waits for the RabbitMQ application to start on the target node"},
      {"stop", "stop", "Stops RabbitMQ and its runtime (Erlang VM). Requires a local node pid file."},
      {"authenticate_user", "authenticate_user <username> <password>",
       "Attempts to authenticate a user. Exits with a non-zero code if authentication fails."},
      {"export_definitions", "export_definitions <file_path | \"-\">",
       "Exports definitions in JSON"},
      {"import_definitions", "import_definitions <file_path | \"-\">",
       "Imports definitions in JSON"},
  };
  return v;
}

const Verb* find_verb(const std::string& name) {
  for (const Verb& v : verbs())
    if (name == v.name) return &v;
  for (const Verb& v : tenancy_verbs())
    if (name == v.name) return &v;
  for (const Verb& v : parameter_verbs())
    if (name == v.name) return &v;
  return nullptr;
}

bool is_tenancy_verb(const Verb* v) {
  const auto& t = tenancy_verbs();
  return v >= t.data() && v < t.data() + t.size();
}

bool is_parameter_verb(const Verb* v) {
  const auto& p = parameter_verbs();
  return v >= p.data() && v < p.data() + p.size();
}

}  // namespace

std::string usage_line(const Options& o, const Verb& v) {
  return o.program + " [--node <node>] [--longnames] [--quiet] [--data-dir <dir>] " + v.usage;
}

// Banners go to stdout before the request (so they precede errors on stderr); -q and the JSON
// formatter drop them, as in rabbitmqctl.
void banner(const Options& o, const std::string& text) {
  if (o.quiet || o.formatter == "json") return;
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

namespace {

// As rabbitmqctl when the node does not answer (exit 69).
int node_unreachable(const Options& o, const std::string& why) {
  std::fprintf(stderr,
               "Error: unable to perform an operation on node '%s'. Please see diagnostics "
               "information and suggestions below.\n\n"
               "Most common reasons for this are:\n\n"
               " * Target node is not running\n"
               " * The data directory is not the server's (use --data-dir or WARREN_DATA_DIR)\n"
               " * This user may not open the server's control socket (it is mode 0600)\n\n"
               "DIAGNOSTICS\n===========\n\n"
               "attempted to contact: %s\n\n"
               " * suggestion: start the node (warren-server --data-dir %s)\n",
               o.node.c_str(), why.c_str(), o.data_dir.c_str());
  return kExitUnavailable;
}

int server_error(const json::object& reply) {
  std::string text = reply.contains("error") && reply.at("error").is_string()
                         ? std::string(reply.at("error").get_string())
                         : "unknown error";
  int code = reply.contains("exit") && reply.at("exit").is_int64()
                 ? static_cast<int>(reply.at("exit").get_int64())
                 : kExitSoftware;
  bool plain = reply.contains("plain") && reply.at("plain").is_bool() && reply.at("plain").get_bool();
  std::fprintf(stderr, plain ? "%s\n" : "Error:\n%s\n", text.c_str());
  return code;
}

}  // namespace

// One request; rows go to on_rows. Returns the exit code (errors already printed).
int request(const Options& o, json::object req,
            const std::function<void(const json::array&)>& on_rows, json::object* final) {
  ControlClient client;
  std::string why;
  if (!client.connect(o.data_dir, &why)) return node_unreachable(o, why);
  client.set_timeout(o.timeout_s);
  json::object reply = client.call(req, on_rows);
  if (final != nullptr) *final = reply;
  if (reply.contains("timeout")) {
    std::fprintf(stderr, "Error: operation %s on node %s timed out. Timeout value used: %.0f\n",
                 o.verb.c_str(), o.node.c_str(), o.timeout_s * 1000);
    return kExitTempFail;
  }
  if (reply.contains("error")) return server_error(reply);
  return kExitOk;
}

int list(const Options& o, const Verb& v) {
  std::vector<std::string> columns = o.args.empty() ? v.default_columns : o.args;
  std::string bad;
  for (const std::string& c : columns)
    if (std::find(v.all_columns.begin(), v.all_columns.end(), c) == v.all_columns.end())
      bad += (bad.empty() ? "" : ", ") + c;
  if (!bad.empty()) {
    std::string given = v.name;
    for (const std::string& a : o.args) given += " " + a;
    std::fprintf(stderr,
                 "Error (argument validation): Info key(s) %s are not supported\n"
                 "Arguments given:\n\t%s\n\nUsage\n\n%s\n",
                 bad.c_str(), given.c_str(), usage_line(o, v).c_str());
    return kExitUsage;
  }
  std::string name = v.name;
  if (name == "list_queues") {
    char timeout[64];
    std::snprintf(timeout, sizeof timeout, "Timeout: %.1f seconds ...",
                  o.timeout_s > 0 ? o.timeout_s : 60.0);
    banner(o, timeout);
    banner(o, "Listing queues for vhost " + o.vhost + " ...");
  } else if (name == "list_exchanges") {
    banner(o, "Listing exchanges for vhost " + o.vhost + " ...");
  } else if (name == "list_bindings") {
    banner(o, "Listing bindings for vhost " + o.vhost + "...");
  } else if (name == "list_consumers") {
    banner(o, "Listing consumers in vhost " + o.vhost + " ...");
  } else if (name == "list_mqtt_connections") {
    banner(o, "Listing MQTT connections ...");
  } else if (name == "list_stomp_connections") {
    banner(o, "Listing STOMP connections ...");
  } else {
    banner(o, "Listing " + name.substr(5) + " ...");
  }
  bool json_out = o.formatter == "json";
  RowPrinter printer(columns, json_out, !o.no_table_headers);
  // Table headers come only with the first row (rabbitmqctl prints none for an empty list).
  bool begun = json_out;
  if (json_out) printer.begin();
  int rc = request(o, json::object{{"verb", v.name}, {"vhost", o.vhost}},
                   [&](const json::array& rows) {
                     for (const json::value& r : rows) {
                       if (!r.is_object()) continue;
                       if (!begun) {
                         printer.begin();
                         begun = true;
                       }
                       printer.row(r.get_object());
                     }
                   });
  if (rc == kExitOk && json_out) printer.end();
  std::fflush(stdout);
  return rc;
}

bool need_args(const Options& o, const Verb& v, size_t n) {
  if (o.args.size() == n) return true;
  std::fprintf(stderr, "Error (argument validation): %s\nArguments given:\n\t%s\n\nUsage\n\n%s\n",
               o.args.size() < n ? "not enough arguments." : "too many arguments.", v.name,
               usage_line(o, v).c_str());
  return false;
}

namespace {

int status(const Options& o) {
  banner(o, "Status of node " + o.node + " ...");
  json::object row;
  int rc = request(o, json::object{{"verb", "status"}}, [&](const json::array& rows) {
    if (!rows.empty() && rows[0].is_object()) row = rows[0].get_object();
  });
  if (rc != kExitOk) return rc;
  if (o.formatter == "json") {
    std::printf("%s\n", json::serialize(row).c_str());
    return kExitOk;
  }
  auto val = [&](const char* k) { return row.contains(k) ? table_value(row.at(k)) : ""; };
  std::printf("Runtime\n\nOS PID: %s\nWarren version: %s\nNode name: %s\n\n"
              "Data directory\n\nNode data directory: %s\n\n"
              "Alarms\n\n%s\n\nTotals\n\nConnection count: %s\nQueue count: %s\n",
              val("pid").c_str(), val("version").c_str(), val("node").c_str(),
              val("data_directory").c_str(),
              row.contains("alarms") && !row.at("alarms").get_array().empty()
                  ? val("alarms").c_str() : "(none)",
              val("connections").c_str(), val("queues").c_str());
  return kExitOk;
}

// Waits until the server answers (or the timeout, default 300 s as rabbitmqctl's, passes).
int await_startup(const Options& o) {
  double timeout = o.timeout_s > 0 ? o.timeout_s : 300;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout * 1000));
  std::string why;
  for (;;) {
    ControlClient client;
    if (client.connect(o.data_dir, &why)) {
      json::object reply = client.call(json::object{{"verb", "await_startup"}}, [](auto&) {});
      if (!reply.contains("error")) return kExitOk;
      why = std::string(reply.at("error").get_string());
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "Error:\nTimed out waiting for the node %s to start: %s\n", o.node.c_str(),
               why.c_str());
  return kExitTempFail;
}

int stop(const Options& o) {
  banner(o, "Stopping and halting node " + o.node + " ...");
  ControlClient client;
  std::string why;
  if (!client.connect(o.data_dir, &why)) return node_unreachable(o, why);
  json::object reply = client.call(json::object{{"verb", "stop"}}, [](auto&) {});
  if (reply.contains("error")) return server_error(reply);
  client.wait_closed();  // the server closes the socket when its process exits
  return kExitOk;
}

// rabbitmqctl writes definitions with every object's keys in alphabetical order.
json::value sorted_keys(const json::value& v) {
  if (v.is_array()) {
    json::array a;
    for (const json::value& e : v.get_array()) a.push_back(sorted_keys(e));
    return a;
  }
  if (!v.is_object()) return v;
  std::vector<std::pair<std::string, const json::value*>> entries;
  for (const auto& [k, e] : v.get_object()) entries.emplace_back(std::string(k), &e);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json::object o;
  for (const auto& [k, e] : entries) o[k] = sorted_keys(*e);
  return o;
}

int export_definitions(const Options& o, const Verb& v) {
  if (!need_args(o, v, 1)) return kExitUsage;
  const std::string& path = o.args[0];
  if (path != "-") banner(o, "Exporting definitions in JSON to a file at \"" + path + "\" ...");
  // The server sends the head, then queues, exchanges and bindings in chunks.
  json::object defs;
  int rc = request(o, json::object{{"verb", "export_definitions"}}, [&](const json::array& rows) {
    for (const json::value& r : rows) {
      if (!r.is_object()) continue;
      for (const auto& [key, value] : r.get_object()) {
        if (key == "head" && value.is_object()) {
          defs = value.get_object();
        } else if (value.is_array() && defs.contains(key) && defs[key].is_array()) {
          for (const json::value& e : value.get_array()) defs[key].get_array().push_back(e);
        }
      }
    }
  });
  if (rc != kExitOk) return rc;
  std::string text = json::serialize(sorted_keys(defs));
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) {
    std::fprintf(stderr, "Error:\ncannot write %s\n", path.c_str());
    return kExitCantCreate;
  }
  return kExitOk;
}

int import_definitions(const Options& o, const Verb& v) {
  if (!need_args(o, v, 1)) return kExitUsage;
  const std::string& path = o.args[0];
  std::string text;
  if (path == "-") {
    banner(o, "Importing definitions in JSON from standard input ...");
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    banner(o, "Importing definitions in JSON from a file at \"" + path + "\" ...");
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "Error:\n{:error, :enoent}\n");
      return kExitDataError;
    }
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  boost::system::error_code ec;
  json::value defs = json::parse(text, ec);
  if (ec || !defs.is_object()) {
    std::fprintf(stderr, "Error:\nFailed to decode the definitions: %s\n",
                 ec ? ec.message().c_str() : "not a JSON object");
    return kExitDataError;
  }
  int rc = request(o, json::object{{"verb", "import_definitions"}, {"definitions", defs}},
                   [](auto&) {});
  // rabbitmqctl's words (its import runs on after this; Warren's has finished by now).
  if (rc == kExitOk)
    banner(o, "Successfully started definition import. This process is asynchronous and can take "
              "some time.");
  return rc;
}

}  // namespace

void print_usage(const Options& o) {
  std::printf("\nUsage\n\n%s [--node <node>] [--timeout <timeout>] [--longnames] [--quiet] "
              "[--data-dir <dir>] <command> [<command options>]\n\n"
              "Finds the server through its data directory: --data-dir, else WARREN_DATA_DIR, "
              "else ./data.\n\nAvailable commands:\n\n",
              o.program.c_str());
  for (const Verb& v : verbs()) std::printf("   %-30s%s\n", v.name, v.description);
  for (const Verb& v : tenancy_verbs()) std::printf("   %-30s%s\n", v.name, v.description);
  for (const Verb& v : parameter_verbs()) std::printf("   %-30s%s\n", v.name, v.description);
  std::printf("\nUse '%s help <command>' to learn more about a specific command\n",
              o.program.c_str());
}

bool print_verb_help(const Options& o, const std::string& name) {
  const Verb* v = find_verb(name);
  if (v == nullptr) {
    std::fprintf(stderr, "Error: command '%s' not found\n", name.c_str());
    return false;
  }
  std::printf("\nUsage\n\n%s\n\n%s\n", usage_line(o, *v).c_str(), v->description);
  if (!v->all_columns.empty()) {
    std::string cols;
    for (const std::string& c : v->all_columns) cols += (cols.empty() ? "" : ", ") + c;
    std::printf("\nArguments and Options\n\n<column>\n\tmust be one of %s\n", cols.c_str());
  }
  return true;
}

int run_verb(const Options& o) {
  const Verb* v = find_verb(o.verb);
  if (v == nullptr) {
    print_usage(o);
    std::fprintf(stderr, "\nCommand '%s' not found.\n", o.verb.c_str());
    return kExitUsage;
  }
  std::string name = v->name;
  if (is_tenancy_verb(v)) return run_tenancy_verb(o, *v);
  if (is_parameter_verb(v)) return run_parameter_verb(o, *v);
  if (!v->default_columns.empty()) return list(o, *v);
  if (name == "status") return status(o);
  if (name == "await_startup") return await_startup(o);
  if (name == "stop") return stop(o);
  if (name == "export_definitions") return export_definitions(o, *v);
  if (name == "import_definitions") return import_definitions(o, *v);
  if (name == "authenticate_user") {
    if (!need_args(o, *v, 2)) return kExitUsage;
    banner(o, "Authenticating user \"" + o.args[0] + "\" ...");
    int rc = request(o, json::object{{"verb", "authenticate_user"}, {"user", o.args[0]},
                                     {"password", o.args[1]}},
                     [](auto&) {});
    if (rc == kExitOk) std::printf("Success\n");
    return rc;
  }
  if (name == "purge_queue") {
    if (!need_args(o, *v, 1)) return kExitUsage;
    banner(o, "Purging queue '" + o.args[0] + "' in vhost '" + o.vhost + "' ...");
    return request(o, json::object{{"verb", "purge_queue"}, {"vhost", o.vhost}, {"queue", o.args[0]}},
                   [](auto&) {});
  }
  if (name == "delete_queue") {
    if (!need_args(o, *v, 1)) return kExitUsage;
    banner(o, "Deleting queue '" + o.args[0] + "' on vhost '" + o.vhost + "' ...");
    json::object final;
    int rc = request(o,
                     json::object{{"verb", "delete_queue"}, {"vhost", o.vhost}, {"queue", o.args[0]},
                                  {"if_empty", o.if_empty}, {"if_unused", o.if_unused}},
                     [](auto&) {}, &final);
    if (rc == kExitOk)
      std::printf("Queue was successfully deleted with %s ready messages\n",
                  std::string(final.at("ok").get_string()).c_str());
    return rc;
  }
  if (name == "close_connection") {
    if (!need_args(o, *v, 2)) return kExitUsage;
    banner(o, "Closing connection " + o.args[0] + ", reason: " + o.args[1] + "...");
    return request(o, json::object{{"verb", "close_connection"}, {"connection", o.args[0]},
                                   {"reason", o.args[1]}},
                   [](auto&) {});
  }
  return kExitUsage;
}

}  // namespace warren::cli
