#include "stomp/destination.h"

#include <vector>

namespace warren::stomp {

namespace {

// rabbit_routing_util:all_dest_prefixes(), in its order (the "Unknown destination" text).
constexpr std::string_view kAllPrefixes =
    "/temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/";

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.substr(i, 3) == "%2F") {
      out.push_back('/');
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> split_slash(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

// "/a/b" of the parts after the type, as RabbitMQ's to_url shows them in errors.
std::string to_url(const std::vector<std::string_view>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) {
    out.push_back('/');
    out.append(parts[i]);
  }
  return out;
}

DestinationError invalid(std::string_view content, std::string_view type) {
  return {"Invalid destination",
          "'" + std::string(content) + "' is not a valid " + std::string(type) + " destination\n"};
}

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '/' || c == '%' || c < 32 || c > 127) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
}

}  // namespace

std::string Destination::exchange() const {
  switch (kind) {
    case DestinationKind::kTopic: return "amq.topic";
    case DestinationKind::kExchange: return name;
    default: return "";
  }
}

std::string Destination::routing_key() const {
  if (kind == DestinationKind::kExchange) return pattern.value_or("");
  return name;
}

Result<Destination, DestinationError> parse_destination(std::string_view header) {
  std::vector<std::string_view> parts = split_slash(header);
  if (parts.size() == 1) return Destination{DestinationKind::kQueue, unescape(parts[0]), {}};
  if (!parts[0].empty())
    return DestinationError{"Unknown destination",
                            "'" + std::string(header) + "' is not a valid destination.\n" +
                                "Valid destination types are: " + std::string(kAllPrefixes) +
                                ".\n"};
  std::string_view type = parts[1];
  // /reply-queue/ takes everything after the prefix as the name, slashes included.
  if (type == "reply-queue" && parts.size() > 2) {
    std::string_view name = header.substr(std::string_view("/reply-queue/").size());
    if (name.empty()) return invalid("/", "reply_queue");
    return Destination{DestinationKind::kReplyQueue, unescape(name), {}};
  }
  size_t rest = 2;
  std::string_view type_name = type;
  DestinationKind kind;
  if (type == "queue") {
    kind = DestinationKind::kQueue;
  } else if (type == "topic") {
    kind = DestinationKind::kTopic;
  } else if (type == "exchange") {
    kind = DestinationKind::kExchange;
  } else if (type == "temp-queue") {
    kind = DestinationKind::kTempQueue;
    type_name = "temp_queue";
  } else if (type == "amq" && parts.size() > 2 && parts[2] == "queue") {
    kind = DestinationKind::kAmqQueue;
    type_name = "amqqueue";
    rest = 3;
  } else {
    return DestinationError{"Unknown destination",
                            "'" + std::string(header) + "' is not a valid destination.\n" +
                                "Valid destination types are: " + std::string(kAllPrefixes) +
                                ".\n"};
  }
  size_t n = parts.size() - rest;
  if (kind == DestinationKind::kExchange) {
    if (n == 0 || parts[rest].empty() || n > 2) return invalid(to_url(parts, rest), type_name);
    Destination d{kind, unescape(parts[rest]), {}};
    if (n == 2) d.pattern = unescape(parts[rest + 1]);
    return d;
  }
  if (n == 1 && !parts[rest].empty()) return Destination{kind, unescape(parts[rest]), {}};
  return invalid(to_url(parts, rest), type_name);
}

std::string format_destination(std::string_view exchange, std::string_view routing_key) {
  std::string out;
  if (exchange.empty()) {
    out = "/queue/";
    append_escaped(out, routing_key);
  } else if (exchange == "amq.topic") {
    out = "/topic/";
    append_escaped(out, routing_key);
  } else {
    out = "/exchange/";
    append_escaped(out, exchange);
    if (!routing_key.empty()) {
      out.push_back('/');
      append_escaped(out, routing_key);
    }
  }
  return out;
}

bool has_destination_prefix(std::string_view value) {
  for (std::string_view p : {"/exchange", "/topic", "/queue", "/amq/queue", "/reply-queue/"})
    if (value.starts_with(p)) return true;
  return false;
}

}  // namespace warren::stomp
