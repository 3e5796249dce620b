// warrenctl's global runtime parameter verbs, with rabbitmqctl 3.10.8's banners and listing
// shape; the server parses the value and sends the error texts and exit codes.
#include "cli/verbs_parameters.h"

#include <cstdio>

#include "cli/formatter.h"

namespace warren::cli {

namespace json = boost::json;

const std::vector<Verb>& parameter_verbs() {
  static const std::vector<Verb> v = {
      {"set_global_parameter", "set_global_parameter <name> <value>",
       "Sets a runtime parameter."},
      {"clear_global_parameter", "clear_global_parameter <name>",
       "Clears a global runtime parameter"},
      {"list_global_parameters", "list_global_parameters [--no-table-headers]",
       "Lists global runtime parameters"},
  };
  return v;
}

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// rabbitmqctl 3.10.8 prints this listing whole (list_global_formatted returns a list, not a
// stream): an empty one is a blank line under the banner, or "[]" as JSON, with no header.
int list_global_parameters(const Options& o) {
  banner(o, "Listing global runtime parameters ...");
  json::array all;
  int rc = request(o, {{"verb", "list_global_parameters"}}, [&](const json::array& rows) {
    for (const json::value& r : rows)
      if (r.is_object()) all.push_back(r);
  });
  if (rc != kExitOk) return rc;
  const bool json_out = o.formatter == "json";
  if (all.empty()) {
    std::puts(json_out ? "[]" : "");
  } else {
    RowPrinter printer({"name", "value"}, json_out, !o.no_table_headers);
    printer.begin();
    for (const json::value& r : all) printer.row(r.get_object());
    printer.end();
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

int run_parameter_verb(const Options& o, const Verb& v) {
  const std::string name = v.name;
  const auto& a = o.args;
  if (name == "set_global_parameter") {
    if (!need_args(o, v, 2)) return kExitUsage;
    banner(o, "Setting global runtime parameter " + quoted(a[0]) + " to " + quoted(a[1]) + " ...");
    return request(o, {{"verb", name}, {"name", a[0]}, {"value", a[1]}}, [](auto&) {});
  }
  if (name == "clear_global_parameter") {
    if (!need_args(o, v, 1)) return kExitUsage;
    banner(o, "Clearing global runtime parameter " + quoted(a[0]) + " ...");
    return request(o, {{"verb", name}, {"name", a[0]}}, [](auto&) {});
  }
  if (name == "list_global_parameters") {
    if (!need_args(o, v, 0)) return kExitUsage;
    return list_global_parameters(o);
  }
  return kExitUsage;
}

}  // namespace warren::cli
