// warrenctl: rabbitmqctl for Warren. Finds the server through its data directory (--data-dir,
// else WARREN_DATA_DIR, else ./data) and talks JSON lines over DATA_DIR/warren.sock. Invoked as
// rabbitmqctl (a symlink), it behaves the same and names itself so.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/plugins_cli.h"
#include "cli/verbs.h"

namespace {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string h(buf);
  if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace warren::cli;
  Options o;
  std::string_view argv0 = argv[0];
  if (auto slash = argv0.rfind('/'); slash != std::string_view::npos) argv0 = argv0.substr(slash + 1);
  if (argv0 == "rabbitmqctl") o.program = "rabbitmqctl";
  // As warren-plugins or rabbitmq-plugins (symlinks): the plugin commands.
  const bool plugins_mode = argv0 == "warren-plugins" || argv0 == "rabbitmq-plugins";
  if (plugins_mode) o.program = std::string(argv0);
  o.node = "warren@" + host_name();
  if (const char* d = std::getenv("WARREN_DATA_DIR"); d != nullptr && *d != 0) o.data_dir = d;
  if (o.data_dir.empty()) o.data_dir = "./data";

  // Options may come before or after the verb, as with rabbitmqctl.
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        *out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    std::string key = a.rfind("--", 0) == 0 ? a.substr(0, a.find('=')) : a;
    if (key == "--data-dir") {
      if (!value(&o.data_dir)) goto missing;
    } else if (key == "-p" || key == "--vhost") {
      if (!value(&o.vhost)) goto missing;
    } else if (key == "-n" || key == "--node") {
      if (!value(&v)) goto missing;  // one node per data directory: accepted and ignored
    } else if (key == "-t" || key == "--timeout") {
      if (!value(&v)) goto missing;
      o.timeout_s = std::atof(v.c_str());
    } else if (key == "--priority") {
      if (!value(&o.priority)) goto missing;
    } else if (key == "--apply-to") {
      if (!value(&o.apply_to)) goto missing;
    } else if (key == "--formatter") {
      if (!value(&o.formatter)) goto missing;
      if (o.formatter != "table" && o.formatter != "json") {
        std::fprintf(stderr, "Error: formatter %s is not supported (table, json)\n",
                     o.formatter.c_str());
        return kExitUsage;
      }
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (a == "-s" || a == "--silent") {
      o.quiet = true;
      o.no_table_headers = true;
    } else if (a == "--no-table-headers") {
      o.no_table_headers = true;
    } else if (a == "-l" || a == "--longnames" || a == "--online" || a == "--local") {
    } else if (plugins_mode && (a == "-e" || a == "--enabled")) {
      o.list_enabled = true;
    } else if (plugins_mode && (a == "-E" || a == "--explicit")) {
      o.list_explicit = true;
    } else if (plugins_mode && (a == "-m" || a == "--minimal")) {
      o.list_minimal = true;
    } else if (plugins_mode && (a == "-v" || a == "--verbose")) {
    } else if (a == "--offline") {
      o.offline = true;
    } else if (a == "-e" || a == "--if-empty") {
      o.if_empty = true;
    } else if (a == "-u" || a == "--if-unused") {
      o.if_unused = true;
    } else if (a == "-?" || a == "-h" || a == "--help") {
      o.help = true;
    } else if (o.verb.empty()) {
      o.verb = a;
    } else {
      o.args.push_back(a);
    }
    continue;
  missing:
    std::fprintf(stderr, "Error: option %s needs a value\n", a.c_str());
    return kExitUsage;
  }

  if (plugins_mode) return run_plugins(o);
  if (o.verb.empty()) {
    print_usage(o);
    return o.help ? kExitOk : kExitUsage;
  }
  if (o.verb == "help") {
    if (o.args.empty()) {
      print_usage(o);
      return kExitOk;
    }
    return print_verb_help(o, o.args[0]) ? kExitOk : kExitUsage;
  }
  if (o.help) return print_verb_help(o, o.verb) ? kExitOk : kExitUsage;
  return run_verb(o);
}
