// warrenctl's verbs: what each sends over the control socket and how it prints the reply, with
// rabbitmqctl's banners, columns, errors and exit codes.
#pragma once

#include <string>
#include <vector>

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
  std::string verb;
  std::vector<std::string> args;
};

int run_verb(const Options& o);
void print_usage(const Options& o);  // the list of verbs
bool print_verb_help(const Options& o, const std::string& verb);  // false: unknown verb

}  // namespace warren::cli
