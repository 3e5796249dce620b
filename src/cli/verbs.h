// warrenctl's verbs: what each sends over the control socket and how it prints the reply, with
// rabbitmqctl's banners, columns, errors and exit codes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace warren::cli {

// Exit codes rabbitmqctl uses (from sysexits.h).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // EX_USAGE
inline constexpr int kExitDataError = 65;    // EX_DATAERR
inline constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: the node is not running
inline constexpr int kExitSoftware = 70;     // EX_SOFTWARE
inline constexpr int kExitCantCreate = 73;   // EX_CANTCREAT
inline constexpr int kExitTempFail = 75;     // EX_TEMPFAIL: timed out

struct Options {
  std::string program = "warrenctl";
  std::string data_dir;
  std::string node;  // warren@<hostname>, shown in banners and errors
  std::string vhost = "/";
  bool quiet = false;
  bool no_table_headers = false;
  std::string formatter = "table";
  double timeout_s = 0;  // 0: the verb's default
  bool help = false;
  bool if_empty = false, if_unused = false;
  std::string priority = "0", apply_to = "all";  // set_policy
  std::string verb;
  std::vector<std::string> args;
  // warren-plugins: --offline, list -e / -E / -m.
  bool offline = false;
  bool list_enabled = false, list_explicit = false, list_minimal = false;
};

int run_verb(const Options& o);

// For the files that implement verbs (verbs.cc, verbs_tenancy.cc).
struct Verb {
  const char* name;
  const char* usage;  // after "<program> [--node <node>] ... "
  const char* description;
  // Listings: the columns shown without column arguments, and every column there is.
  std::vector<std::string> default_columns = {};
  std::vector<std::string> all_columns = {};
  bool vhost_scoped = false;
};
std::string usage_line(const Options& o, const Verb& v);
// Prints a banner line unless -q or the JSON formatter.
void banner(const Options& o, const std::string& text);
// Sends one request; rows go to on_rows, the final reply line to *final. Returns the exit code,
// errors already printed as rabbitmqctl prints them.
int request(const Options& o, boost::json::object req,
            const std::function<void(const boost::json::array&)>& on_rows,
            boost::json::object* final = nullptr);
// Exactly n positional arguments, else a usage error printed (false).
bool need_args(const Options& o, const Verb& v, size_t n);
// A listing: columns from the arguments (checked against v.all_columns) or v's defaults.
int list(const Options& o, const Verb& v);
void print_usage(const Options& o);  // the list of verbs
bool print_verb_help(const Options& o, const std::string& verb);  // false: unknown verb

}  // namespace warren::cli
