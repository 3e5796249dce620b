// A STOMP frame (command, headers, body) and its serialisation as RabbitMQ's rabbit_stomp_frame
// writes it: header names and values escaped (\\ \c \n \r) whatever the version, the
// content-length the body needs (and none for an empty body), the NUL and a trailing LF.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warren::stomp {

using Header = std::pair<std::string, std::string>;

struct Frame {
  std::string command;
  // In the order received. A name sent twice keeps its first value (the parser drops the
  // repeats, as RabbitMQ does).
  std::vector<Header> headers;
  std::string body;

  const std::string* header(std::string_view name) const;
  bool has(std::string_view name) const { return header(name) != nullptr; }
  // RabbitMQ's boolean_header: "true"/"True" and "false"/"False"; anything else is absent.
  std::optional<bool> boolean(std::string_view name) const;
};

// Escapes a header name or value for the wire (STOMP 1.1/1.2, applied by RabbitMQ to 1.0 too).
void append_escaped(std::string& out, std::string_view text);

// Appends the serialised frame to out. A content-length among headers is dropped (the first
// one, as RabbitMQ's lists:keydelete) and the body's real length written last.
void write_frame(std::string& out, std::string_view command, const std::vector<Header>& headers,
                 std::string_view body);

}  // namespace warren::stomp
