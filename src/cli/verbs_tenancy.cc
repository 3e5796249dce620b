// warrenctl's verbs over users, vhosts and permissions, with rabbitmqctl 3.10.8's banners and
// success lines; the server sends the error texts and exit codes.
#include "cli/verbs_tenancy.h"

#include <cstdio>
#include <cstdlib>

#include "cli/formatter.h"

namespace warren::cli {

namespace json = boost::json;

const std::vector<Verb>& tenancy_verbs() {
  static const std::vector<Verb> v = {
      {"add_user", "add_user <username> <password>", "Creates a new user in the internal database"},
      {"delete_user", "delete_user <username>", "Removes a user from the internal database"},
      {"change_password", "change_password <username> <password>", "Changes the user password"},
      {"set_user_tags", "set_user_tags <username> <tag> [...]", "Sets user tags"},
      {"clear_password", "clear_password <username>",
       "Clears (resets) password and disables password login for a user"},
      {"add_vhost", "add_vhost <vhost>", "Creates a virtual host"},
      {"delete_vhost", "delete_vhost <vhost>", "Deletes a virtual host"},
      {"set_permissions", "set_permissions [--vhost <vhost>] <username> <conf> <write> <read>",
       "Sets user permissions for a vhost"},
      {"clear_permissions", "clear_permissions [--vhost <vhost>] <username>",
       "Revokes user permissions for a vhost"},
      {"list_permissions", "list_permissions [--vhost <vhost>] [--no-table-headers]",
       "Lists user permissions in a virtual host"},
      {"list_user_permissions", "list_user_permissions [--no-table-headers] <username>",
       "Lists permissions of a user across all virtual hosts"},
      {"set_topic_permissions",
       "set_topic_permissions [--vhost <vhost>] <username> <exchange> <write> <read>",
       "Sets user topic permissions for an exchange"},
      {"clear_topic_permissions",
       "clear_topic_permissions [--vhost <vhost>] <username> [<exchange>]",
       "Clears user topic permissions for a vhost or exchange"},
      {"list_topic_permissions", "list_topic_permissions [--vhost <vhost>] [--no-table-headers]",
       "Lists topic permissions in a virtual host"},
      {"list_user_topic_permissions", "list_user_topic_permissions [--no-table-headers] <username>",
       "Lists user topic permissions"},
      {"set_vhost_limits", "set_vhost_limits [--vhost <vhost>] <definition>",
       "Sets virtual host limits"},
      {"set_policy",
       "set_policy [--vhost <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> "
       "<pattern> <definition>",
       "Sets or updates a policy"},
      {"clear_policy", "clear_policy [--vhost <vhost>] <name>", "Clears a policy"},
      {"list_policies", "list_policies [--vhost <vhost>] [--no-table-headers]",
       "Lists all policies in a virtual host"},
      {"list_vhost_limits", "list_vhost_limits [--vhost <vhost>]",
       "Displays configured virtual host limits"},
      {"trace_on", "trace_on [--vhost <vhost>]", ""},
      {"trace_off", "trace_off [--vhost <vhost>]", ""},
  };
  return v;
}

namespace {

int simple(const Options& o, json::object req, const std::string& banner_text,
           const char* success = nullptr) {
  banner(o, banner_text);
  int rc = request(o, std::move(req), [](auto&) {});
  if (rc == kExitOk && success != nullptr) std::printf("%s\n", success);
  return rc;
}

int table(const Options& o, json::object req, const std::string& banner_text,
          std::vector<std::string> columns) {
  banner(o, banner_text);
  bool json_out = o.formatter == "json";
  RowPrinter printer(std::move(columns), json_out, !o.no_table_headers);
  bool begun = json_out;
  if (json_out) printer.begin();
  int rc = request(o, std::move(req), [&](const json::array& rows) {
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

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The topic permission listings as rabbitmqctl 3.10.8 prints them: the whole list at once, so an
// empty one is a blank line (table) or "[]" (JSON); list_user_topic_permissions has no header.
int topic_table(const Options& o, json::object req, const std::string& banner_text,
                std::vector<std::string> columns, bool header) {
  banner(o, banner_text);
  json::array all;
  int rc = request(o, std::move(req), [&](const json::array& rows) {
    for (const json::value& r : rows)
      if (r.is_object()) all.push_back(r);
  });
  if (rc != kExitOk) return rc;
  const bool json_out = o.formatter == "json";
  if (all.empty()) {
    std::puts(json_out ? "[]" : "");
  } else {
    RowPrinter printer(std::move(columns), json_out, header && !o.no_table_headers);
    printer.begin();
    for (const json::value& r : all) printer.row(r.get_object());
    printer.end();
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

int run_tenancy_verb(const Options& o, const Verb& v) {
  std::string name = v.name;
  const auto& a = o.args;
  if (name == "add_user") {
    if (!need_args(o, v, 2)) return kExitUsage;
    return simple(o, {{"verb", name}, {"user", a[0]}, {"password", a[1]}},
                  "Adding user " + quoted(a[0]) + " ...",
                  "Done. Don't forget to grant the user permissions to some virtual hosts! See "
                  "'rabbitmqctl help set_permissions' to learn more.");
  }
  if (name == "delete_user") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"user", a[0]}}, "Deleting user " + quoted(a[0]) + " ...");
  }
  if (name == "change_password") {
    if (!need_args(o, v, 2)) return kExitUsage;
    return simple(o, {{"verb", name}, {"user", a[0]}, {"password", a[1]}},
                  "Changing password for user " + quoted(a[0]) + " ...");
  }
  if (name == "clear_password") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"user", a[0]}},
                  "Clearing password for user " + quoted(a[0]) + " ...");
  }
  if (name == "set_user_tags") {
    if (a.empty()) {
      need_args(o, v, 1);  // prints "not enough arguments"
      return kExitUsage;
    }
    json::array tags;
    std::string shown;
    for (size_t i = 1; i < a.size(); ++i) {
      tags.push_back(json::string(a[i]));
      shown += (shown.empty() ? "" : ", ") + a[i];
    }
    return simple(o, {{"verb", name}, {"user", a[0]}, {"tags", std::move(tags)}},
                  "Setting tags for user " + quoted(a[0]) + " to [" + shown + "] ...");
  }
  if (name == "add_vhost") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"vhost", a[0]}}, "Adding vhost " + quoted(a[0]) + " ...");
  }
  if (name == "delete_vhost") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"vhost", a[0]}}, "Deleting vhost " + quoted(a[0]) + " ...");
  }
  if (name == "set_permissions") {
    if (!need_args(o, v, 4)) return kExitUsage;
    return simple(o,
                  {{"verb", name}, {"vhost", o.vhost}, {"user", a[0]}, {"configure", a[1]},
                   {"write", a[2]}, {"read", a[3]}},
                  "Setting permissions for user " + quoted(a[0]) + " in vhost " +
                      quoted(o.vhost) + " ...");
  }
  if (name == "clear_permissions") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"vhost", o.vhost}, {"user", a[0]}},
                  "Clearing permissions for user " + quoted(a[0]) + " in vhost " +
                      quoted(o.vhost) + " ...");
  }
  if (name == "list_permissions") {
    if (!need_args(o, v, 0)) return kExitUsage;
    return table(o, {{"verb", name}, {"vhost", o.vhost}},
                 "Listing permissions for vhost " + quoted(o.vhost) + " ...",
                 {"user", "configure", "write", "read"});
  }
  if (name == "list_user_permissions") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return table(o, {{"verb", name}, {"user", a[0]}},
                 "Listing permissions for user " + quoted(a[0]) + " ...",
                 {"vhost", "configure", "write", "read"});
  }
  if (name == "set_topic_permissions") {
    if (!need_args(o, v, 4)) return kExitUsage;
    return simple(o,
                  {{"verb", name}, {"vhost", o.vhost}, {"user", a[0]}, {"exchange", a[1]},
                   {"write", a[2]}, {"read", a[3]}},
                  "Setting topic permissions on " + quoted(a[1]) + " for user " + quoted(a[0]) +
                      " in vhost " + quoted(o.vhost) + " ...");
  }
  if (name == "clear_topic_permissions") {
    if (!need_args(o, v, a.empty() || a.size() > 2 ? 1 : a.size())) return kExitUsage;
    json::object req{{"verb", name}, {"vhost", o.vhost}, {"user", a[0]}};
    if (a.size() == 1)
      return simple(o, std::move(req),
                    "Clearing topic permissions for user " + quoted(a[0]) + " in vhost " +
                        quoted(o.vhost) + " ...");
    req["exchange"] = a[1];
    return simple(o, std::move(req),
                  "Clearing topic permissions on " + quoted(a[1]) + " for user " + quoted(a[0]) +
                      " in vhost " + quoted(o.vhost) + " ...");
  }
  if (name == "list_topic_permissions") {
    if (!need_args(o, v, 0)) return kExitUsage;
    return topic_table(o, {{"verb", name}, {"vhost", o.vhost}},
                       "Listing topic permissions for vhost " + quoted(o.vhost) + " ...",
                       {"user", "exchange", "write", "read"}, true);
  }
  if (name == "list_user_topic_permissions") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return topic_table(o, {{"verb", name}, {"user", a[0]}},
                       "Listing topic permissions for user " + quoted(a[0]) + " ...",
                       {"vhost", "exchange", "write", "read"}, false);
  }
  if (name == "set_vhost_limits") {
    if (!need_args(o, v, 1)) return kExitUsage;
    std::string text = "Setting vhost limits to " + quoted(a[0]) + " for vhost " +
                       quoted(o.vhost) + " ...";
    boost::system::error_code ec;
    json::value limits = json::parse(a[0], ec);
    if (ec || !limits.is_object()) {
      banner(o, text);
      std::fprintf(stderr, "Error:\nJSON decoding error. Reason: badarg\n");  // as 3.10.8
      return kExitUnavailable;
    }
    return simple(o, {{"verb", name}, {"vhost", o.vhost}, {"limits", limits}}, text);
  }
  if (name == "set_policy") {
    if (!need_args(o, v, 3)) return kExitUsage;
    char* end = nullptr;
    long long priority = std::strtoll(o.priority.c_str(), &end, 10);
    if (o.priority.empty() || *end != 0) {
      std::fprintf(stderr, "Error: --priority must be an integer, got '%s'\n", o.priority.c_str());
      return kExitUsage;
    }
    return simple(o,
                  {{"verb", name}, {"vhost", o.vhost}, {"name", a[0]}, {"pattern", a[1]},
                   {"definition", a[2]}, {"apply_to", o.apply_to}, {"priority", priority}},
                  "Setting policy " + quoted(a[0]) + " for pattern " + quoted(a[1]) + " to " +
                      quoted(a[2]) + " with priority " + quoted(o.priority) + " for vhost " +
                      quoted(o.vhost) + " ...");
  }
  if (name == "clear_policy") {
    if (!need_args(o, v, 1)) return kExitUsage;
    return simple(o, {{"verb", name}, {"vhost", o.vhost}, {"name", a[0]}},
                  "Clearing policy " + quoted(a[0]) + " on vhost " + quoted(o.vhost) + " ...");
  }
  if (name == "list_policies") {
    if (!need_args(o, v, 0)) return kExitUsage;
    return table(o, {{"verb", name}, {"vhost", o.vhost}},
                 "Listing policies for vhost " + quoted(o.vhost) + " ...",
                 {"vhost", "name", "pattern", "apply-to", "definition", "priority"});
  }
  if (name == "trace_on" || name == "trace_off") {
    if (!need_args(o, v, 0)) return kExitUsage;
    const bool on = name == "trace_on";
    const std::string done =
        (on ? "Trace enabled for vhost " : "Trace disabled for vhost ") + o.vhost;
    return simple(o, {{"verb", name}, {"vhost", o.vhost}},
                  (on ? "Starting tracing for vhost " : "Stopping tracing for vhost ") +
                      quoted(o.vhost) + " ...",
                  done.c_str());
  }
  if (name == "list_vhost_limits") {
    if (!need_args(o, v, 0)) return kExitUsage;
    banner(o, "Listing limits for vhost " + quoted(o.vhost) + " ...");
    return request(o, {{"verb", name}, {"vhost", o.vhost}}, [](const json::array& rows) {
      for (const json::value& r : rows) std::printf("%s\n", json::serialize(r).c_str());
    });
  }
  return kExitUsage;
}

}  // namespace warren::cli
