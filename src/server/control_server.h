// The control socket warrenctl talks to: a Unix domain socket in the data directory (mode 0600,
// never a TCP port), JSON lines in both directions. A request is one object {"verb": ...}; the
// reply is zero or more {"rows": [...]} lines and then one {"ok": "message"} or
// {"error": "text", "exit": code} line. Runs on the broker's event loop; long listings and
// imports are produced in chunks, each in its own loop turn (ControlStep), so message traffic
// keeps flowing between them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json.hpp>

#include "broker/broker.h"
#include "common/control_socket_path.h"

namespace warren::server {

// One reply being produced. A verb writes rows and finishes with ok() or error(); one that has
// more work sets `next`, which the session calls again after the previous chunk is written.
struct ControlReply {
  boost::json::array rows;
  std::string out;  // serialized lines not yet written
  bool finished = false;
  std::function<void(ControlReply&)> next;

  void flush_rows();
  void ok(std::string message = "");
  // rabbitmqctl prints most errors as "Error:\n<text>"; plain ones (e.g. an unknown vhost for
  // list_permissions) as the text alone.
  void error(std::string text, int exit_code, bool plain = false);
};

class PluginListeners;

struct ControlContext {
  broker::Broker& broker;
  std::string data_dir;
  std::string node_name;  // warren@<hostname>
  PluginListeners* plugins = nullptr;  // for warren-plugins; null: no plugins to apply
};

// "warren@<hostname>": the node name shown by warrenctl and the management API.
std::string node_name();

// Runs one request (control_verbs.cc).
// The request is taken apart (an import moves its definitions out rather than copying them).
void run_control_verb(ControlContext& ctx, boost::json::object& request, ControlReply& reply);
// The verb groups it dispatches to; each returns false for a verb that is not its own.
void run_definitions_verb(ControlContext& ctx, boost::json::object& request,
                          ControlReply& reply);  // control_definitions.cc
bool run_tenancy_verb(ControlContext& ctx, const std::string& verb,
                      const boost::json::object& request,
                      ControlReply& reply);  // control_verbs_tenancy.cc
bool run_topic_permission_verb(ControlContext& ctx, const std::string& verb,
                               const boost::json::object& request,
                               ControlReply& reply);  // control_verbs_topic_permissions.cc
bool run_global_parameter_verb(ControlContext& ctx, const std::string& verb,
                               const boost::json::object& request,
                               ControlReply& reply);  // control_verbs_global_parameters.cc
bool run_policy_verb(ControlContext& ctx, const std::string& verb,
                     const boost::json::object& request,
                     ControlReply& reply);  // control_verbs_policies.cc
bool run_plugin_verb(ControlContext& ctx, const std::string& verb,
                     ControlReply& reply);  // control_verbs_plugins.cc
bool run_tracing_verb(ControlContext& ctx, const std::string& verb,
                      const boost::json::object& request,
                      ControlReply& reply);  // control_verbs_tracing.cc

class ControlServer {
 public:
  ControlServer(broker::Broker& broker, std::string data_dir);
  ~ControlServer();
  // Binds DATA_DIR/warren.sock (replacing a stale file left by a crashed server: the data
  // directory lock proves no other server uses it), mode 0600. False with *error on failure.
  bool start(std::string* error);
  void stop();
  const std::string& path() const { return path_; }
  void set_plugins(PluginListeners* p) { ctx_.plugins = p; }

 private:
  void accept();
  ControlContext ctx_;
  ControlSocketPath socket_path_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
};

}  // namespace warren::server
