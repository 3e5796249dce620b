#include "stomp/frame.h"

#include <algorithm>

namespace warren::stomp {

const std::string* Frame::header(std::string_view name) const {
  for (const Header& h : headers)
    if (h.first == name) return &h.second;
  return nullptr;
}

std::optional<bool> Frame::boolean(std::string_view name) const {
  const std::string* v = header(name);
  if (v == nullptr) return std::nullopt;
  // Some Python clients write booleans as True/False; RabbitMQ accepts both spellings.
  if (*v == "true" || *v == "True") return true;
  if (*v == "false" || *v == "False") return false;
  return std::nullopt;
}

void append_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case ':': out += "\\c"; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out.push_back(c);
    }
  }
}

void write_frame(std::string& out, std::string_view command, const std::vector<Header>& headers,
                 std::string_view body) {
  out.append(command);
  out.push_back('\n');
  auto dropped = std::find_if(headers.begin(), headers.end(),
                              [](const Header& h) { return h.first == "content-length"; });
  for (auto it = headers.begin(); it != headers.end(); ++it) {
    if (it == dropped) continue;
    append_escaped(out, it->first);
    out.push_back(':');
    append_escaped(out, it->second);
    out.push_back('\n');
  }
  if (!body.empty()) {
    out += "content-length:";
    out += std::to_string(body.size());
    out.push_back('\n');
  }
  out.push_back('\n');
  out.append(body);
  // The NUL ends the frame; the LF after it is RabbitMQ's trailing_lf (on by default), which
  // some clients need to see a frame end promptly.
  out.push_back('\0');
  out.push_back('\n');
}

}  // namespace warren::stomp
