// rabbitmqctl's output formats for listings: "table" (tab-separated values under a header line
// of column names, which is what rabbitmqctl 3.10 prints on a terminal and into a pipe alike)
// and "json" (an array with one object per line, each after the first prefixed with a comma).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace warren::cli {

class RowPrinter {
 public:
  RowPrinter(std::vector<std::string> columns, bool json, bool headers)
      : columns_(std::move(columns)), json_(json), headers_(headers) {}
  void begin();
  void row(const boost::json::object& r);
  void end();

 private:
  std::vector<std::string> columns_;
  bool json_, headers_;
  size_t rows_ = 0;
};

// A value as rabbitmqctl's table shows it: strings bare, lists as [a, b], arguments as
// [{"key",value}].
std::string table_value(const boost::json::value& v);

}  // namespace warren::cli
