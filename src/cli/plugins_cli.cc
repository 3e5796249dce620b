// warren-plugins (also as rabbitmq-plugins): list, enable, disable and set the plugins of a data
// directory, with rabbitmq-plugins' output. The change is written to DATA_DIR/enabled_plugins
// and applied to the running server (which starts or stops the listeners); with the server down
// (or --offline) it takes effect at the next start.
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include <boost/json.hpp>

#include "cli/control_client.h"
#include "cli/plugins_cli.h"
#include "common/plugins.h"

namespace warren::cli {

namespace json = boost::json;

namespace {

constexpr const char* kVersion = "0.1.0";

int usage(const Options& o) {
  std::fprintf(stderr,
               "Usage\n\n%s [--data-dir <dir>] [--offline] <command>\n\n"
               "Commands:\n"
               "    list [-e|-E] [-m] [<pattern>]   Lists plugins and their state\n"
               "    enable <plugin> [<plugin>...]   Enables plugins\n"
               "    disable <plugin> [<plugin>...]  Disables plugins\n"
               "    set [<plugin>...]               Enables exactly these plugins\n",
               o.program.c_str());
  return kExitUsage;
}

// The plugins the running server runs, or nullopt when it is not reachable.
std::optional<std::set<std::string>> running(const Options& o) {
  ControlClient client;
  std::string why;
  if (!client.connect(o.data_dir, &why)) return std::nullopt;
  client.set_timeout(o.timeout_s > 0 ? o.timeout_s : 30);
  std::set<std::string> out;
  json::object reply = client.call(json::object{{"verb", "plugins_running"}}, [&](const json::array& rows) {
    for (const json::value& r : rows)
      if (r.is_string()) out.emplace(r.get_string());
  });
  if (reply.contains("error")) return std::nullopt;
  return out;
}

int list(const Options& o) {
  std::string error;
  auto explicit_names = plugins::read_enabled(o.data_dir, &error);
  if (!explicit_names) {
    std::fprintf(stderr, "Error:\n%s\n", error.c_str());
    return kExitDataError;
  }
  const std::set<std::string> enabled = plugins::expand(*explicit_names);
  const auto on_node = running(o);
  const std::string pattern = o.args.empty() ? ".*" : o.args[0];
  const bool only_explicit = o.list_explicit, only_enabled = o.list_enabled || o.list_explicit;
  if (!o.quiet && !o.list_minimal) {
    std::printf("Listing plugins with pattern \"%s\" ...\n", pattern.c_str());
    std::printf(" Configured: E = explicitly enabled; e = implicitly enabled\n");
    std::printf(" | Status: * = running on %s\n", o.node.c_str());
    std::printf(" |/\n");
  }
  for (const plugins::Plugin& p : plugins::kPlugins) {
    const std::string name(p.name);
    if (!o.args.empty() && name.find(o.args[0]) == std::string::npos) continue;
    const bool is_explicit = explicit_names->count(name) > 0;
    const bool is_enabled = enabled.count(name) > 0;
    if ((only_explicit && !is_explicit) || (only_enabled && !is_enabled)) continue;
    if (o.list_minimal) {
      std::printf("%s\n", name.c_str());
      continue;
    }
    const char configured = is_explicit ? 'E' : is_enabled ? 'e' : ' ';
    const char status = on_node && on_node->count(name) ? '*' : ' ';
    std::printf("[%c%c] %-26s %s\n", configured, status, name.c_str(), kVersion);
  }
  return kExitOk;
}

// Writes the new explicit set and applies it; prints as rabbitmq-plugins enable/disable.
int change(const Options& o, const std::set<std::string>& after) {
  const std::string path = plugins::file_path(o.data_dir);
  {
    std::ofstream out(path, std::ios::trunc);
    out << plugins::format(after);
    if (!out) {
      std::fprintf(stderr, "Error:\ncannot write %s\n", path.c_str());
      return kExitCantCreate;
    }
  }
  std::printf("The following plugins have been configured:\n");
  for (const std::string& n : plugins::expand(after)) std::printf("  %s\n", n.c_str());
  ControlClient client;
  std::string why;
  if (o.offline || !client.connect(o.data_dir, &why)) {
    std::printf("Offline change; changes will take effect at broker restart.\n");
    return kExitOk;
  }
  std::printf("Applying plugin configuration to %s...\n", o.node.c_str());
  std::fflush(stdout);
  client.set_timeout(o.timeout_s > 0 ? o.timeout_s : 60);
  std::vector<std::string> started, stopped;
  json::object reply = client.call(json::object{{"verb", "plugins_apply"}}, [&](const json::array& rows) {
    for (const json::value& r : rows) {
      const json::object& row = r.as_object();
      if (const json::value* s = row.if_contains("started")) started.emplace_back(s->get_string());
      if (const json::value* s = row.if_contains("stopped")) stopped.emplace_back(s->get_string());
    }
  });
  if (reply.contains("error")) {
    std::fprintf(stderr, "Error:\n%s\n", std::string(reply.at("error").get_string()).c_str());
    return kExitSoftware;
  }
  if (started.empty() && stopped.empty()) {
    std::printf("Plugin configuration unchanged.\n");
    return kExitOk;
  }
  auto print = [](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    std::printf("The following plugins have been %s:\n", what);
    for (const std::string& n : names) std::printf("  %s\n", n.c_str());
  };
  print("enabled", started);
  print("disabled", stopped);
  std::printf("\n");
  if (!started.empty()) std::printf("started %zu plugins.\n", started.size());
  if (!stopped.empty()) std::printf("stopped %zu plugins.\n", stopped.size());
  return kExitOk;
}

}  // namespace

int run_plugins(const Options& o) {
  if (o.verb.empty() || o.help) return usage(o);
  if (o.verb == "list") return list(o);
  if (o.verb != "enable" && o.verb != "disable" && o.verb != "set") return usage(o);
  if (o.verb != "set" && o.args.empty()) {
    std::fprintf(stderr, "Error: not enough arguments\n");
    return usage(o);
  }
  std::vector<std::string> unknown;
  for (const std::string& n : o.args)
    if (plugins::find(n) == nullptr) unknown.push_back(n);
  const bool enabling = o.verb != "disable";
  std::printf("%s plugins on node %s:\n", enabling ? "Enabling" : "Disabling", o.node.c_str());
  for (const std::string& n : o.args) std::printf("%s\n", n.c_str());
  if (!unknown.empty()) {
    // rabbitmq-plugins' own words (an Elixir term) and exit code.
    std::string names;
    for (const std::string& n : unknown) names += (names.empty() ? ":" : ", :") + n;
    std::fprintf(stderr, "Error:\n{:plugins_not_found, [%s]}\n", names.c_str());
    return kExitSoftware;
  }
  std::string error;
  auto before = plugins::read_enabled(o.data_dir, &error);
  if (!before) {
    std::fprintf(stderr, "Error:\n%s\n", error.c_str());
    return kExitDataError;
  }
  std::set<std::string> after = o.verb == "set" ? std::set<std::string>() : *before;
  for (const std::string& n : o.args) {
    if (o.verb == "disable") {
      after.erase(n);
      // Disabling a dependency disables what needs it, as rabbitmq-plugins.
      for (auto it = after.begin(); it != after.end();)
        it = plugins::expand({*it}).count(n) ? after.erase(it) : std::next(it);
    } else {
      after.insert(n);
    }
  }
  return change(o, after);
}

}  // namespace warren::cli
