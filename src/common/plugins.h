// The plugins Warren has, by RabbitMQ's names, and the enabled_plugins file that switches them
// (DATA_DIR/enabled_plugins, RabbitMQ's format: an Erlang list of atoms, `[rabbitmq_mqtt].`).
// Shared by warren-plugins (which edits the file) and the server (which reads it at start and
// when told to apply it). Header-only: warrenctl links no broker code.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace warren::plugins {

struct Plugin {
  std::string_view name;
  std::string_view summary;
  std::array<std::string_view, 2> depends;  // enabled with it (RabbitMQ's "implicitly enabled")
};

inline constexpr std::array<Plugin, 8> kPlugins = {{
    {"rabbitmq_management", "HTTP API and web UI (15672)",
     {"rabbitmq_management_agent", "rabbitmq_web_dispatch"}},
    {"rabbitmq_management_agent", "statistics for the management API", {}},
    {"rabbitmq_mqtt", "MQTT 3.1.1 (1883)", {}},
    {"rabbitmq_prometheus", "Prometheus metrics (15692)", {"rabbitmq_web_dispatch"}},
    {"rabbitmq_stomp", "STOMP 1.0-1.2 (61613)", {}},
    {"rabbitmq_web_dispatch", "the HTTP listeners of the web plugins", {}},
    {"rabbitmq_web_mqtt", "MQTT over WebSocket (15675)", {"rabbitmq_mqtt", "rabbitmq_web_dispatch"}},
    {"rabbitmq_web_stomp", "STOMP over WebSocket (15674)",
     {"rabbitmq_stomp", "rabbitmq_web_dispatch"}},
}};

// What a data directory without an enabled_plugins file runs: the management API and UI and
// Prometheus, as Warren always has (RabbitMQ's Debian package enables none).
inline const std::set<std::string> kDefaultEnabled = {"rabbitmq_management", "rabbitmq_prometheus"};

inline const Plugin* find(std::string_view name) {
  for (const Plugin& p : kPlugins)
    if (p.name == name) return &p;
  return nullptr;
}

inline std::string file_path(const std::string& data_dir) { return data_dir + "/enabled_plugins"; }

// Parses `[a,b,c].` (whitespace and %-comments allowed). nullopt when malformed.
inline std::optional<std::set<std::string>> parse(std::string_view text) {
  std::string clean;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(text[i]))) clean.push_back(text[i]);
  }
  if (clean.size() < 3 || clean.front() != '[' || clean.substr(clean.size() - 2) != "].")
    return std::nullopt;
  std::set<std::string> out;
  std::string_view list = std::string_view(clean).substr(1, clean.size() - 3);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view atom = list.substr(0, comma);
    if (atom.size() >= 2 && atom.front() == '\'' && atom.back() == '\'')
      atom = atom.substr(1, atom.size() - 2);
    if (atom.empty()) return std::nullopt;
    out.emplace(atom);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

inline std::string format(const std::set<std::string>& names) {
  std::string out = "[";
  for (const std::string& n : names) {
    if (out.size() > 1) out += ",";
    out += n;
  }
  return out + "].\n";
}

// The explicitly enabled plugins of a data directory: its file, else the defaults. An
// unreadable or malformed file is an error (text in *error).
inline std::optional<std::set<std::string>> read_enabled(const std::string& data_dir,
                                                         std::string* error) {
  std::ifstream in(file_path(data_dir));
  if (!in) return kDefaultEnabled;
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto names = parse(buffer.str());
  if (!names) *error = file_path(data_dir) + ": not a list of plugin names, e.g. [rabbitmq_mqtt].";
  return names;
}

// The explicit set with every dependency added.
inline std::set<std::string> expand(const std::set<std::string>& explicit_names) {
  std::set<std::string> out;
  std::vector<std::string> todo(explicit_names.begin(), explicit_names.end());
  while (!todo.empty()) {
    std::string n = std::move(todo.back());
    todo.pop_back();
    if (!out.insert(n).second) continue;
    if (const Plugin* p = find(n))
      for (std::string_view d : p->depends)
        if (!d.empty()) todo.emplace_back(d);
  }
  return out;
}

}  // namespace warren::plugins
