// warrenctl's side of the control socket: one request, reply lines read as they come.
#pragma once

#include <functional>
#include <string>

#include <boost/json.hpp>

namespace warren::cli {

class ControlClient {
 public:
  ~ControlClient();
  // Connects to DATA_DIR/warren.sock; false with *error (errno text) when nobody listens.
  bool connect(const std::string& data_dir, std::string* error);
  // Replies must come within this many seconds (0: no limit); past it call() returns
  // {"timeout": true}.
  void set_timeout(double seconds);
  // Sends the request, then calls on_rows for each {"rows": [...]} line. Returns the final line
  // ({"ok": ...} or {"error": ..., "exit": n}), or an object with "error" and exit 69 when the
  // connection broke first.
  boost::json::object call(const boost::json::object& request,
                           const std::function<void(const boost::json::array&)>& on_rows);
  // Blocks until the server closes the connection (after stop, when its process exits).
  void wait_closed();

 private:
  bool read_line(std::string* line);
  int fd_ = -1;
  bool timed_out_ = false;
  std::string buffer_;
};

}  // namespace warren::cli
