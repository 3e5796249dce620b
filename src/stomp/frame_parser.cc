#include "stomp/frame_parser.h"

#include <charconv>
#include <cstring>

namespace warren::stomp {

namespace {

// Why a frame cannot be read, in the words of RabbitMQ's parser errors.
constexpr std::string_view kUnexpectedBetweenFrames = "unexpected_chars_between_frames";
constexpr std::string_view kUnexpectedInCommand = "unexpected_chars_in_command";
constexpr std::string_view kUnexpectedInHeader = "unexpected_chars_in_header";
constexpr std::string_view kHeaderNoValue = "header_no_value";
constexpr std::string_view kBadEscape = "bad_escape";
constexpr std::string_view kBadContentLength = "bad_content_length";
constexpr std::string_view kMissingNul = "missing_nul_after_body";

enum class Line { kDone, kNeedMore, kError };

// One line from pos (CR LF or LF ends it; a CR followed by anything else is an error). Sets
// *end to the offset of the terminator and *next past it.
Line read_line(std::string_view d, size_t pos, size_t* end, size_t* next) {
  size_t lf = d.find('\n', pos);
  size_t cr = d.find('\r', pos);
  if (cr != std::string_view::npos && (lf == std::string_view::npos || cr < lf)) {
    if (cr + 1 >= d.size()) return Line::kNeedMore;
    if (d[cr + 1] != '\n') {
      *end = cr;
      return Line::kError;
    }
    *end = cr;
    *next = cr + 2;
    return Line::kDone;
  }
  if (lf == std::string_view::npos) return Line::kNeedMore;
  *end = lf;
  *next = lf + 1;
  return Line::kDone;
}

// Unescapes a header name or value into out; false on an unknown escape code.
bool unescape(std::string_view in, std::string* out, std::string* error) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    char code = i + 1 < in.size() ? in[i + 1] : '\0';
    switch (code) {
      case 'n': out->push_back('\n'); break;
      case 'c': out->push_back(':'); break;
      case '\\': out->push_back('\\'); break;
      case 'r': out->push_back('\r'); break;
      default:
        *error = std::string(kBadEscape) + " \\" + (i + 1 < in.size() ? std::string(1, code) : "");
        return false;
    }
    ++i;
  }
  return true;
}

// The header line's name ends at the first colon that is not escaped (escapes are two bytes).
size_t name_end(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\') {
      ++i;
    } else if (line[i] == ':') {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

ParseStatus parse_frame(std::string_view d, size_t max_frame_size, Frame* out, size_t* used,
                        std::string* error) {
  size_t pos = 0;
  // Inter-frame noise: NULs and EOLs (heart-beats).
  while (pos < d.size()) {
    if (d[pos] == '\0' || d[pos] == '\n') {
      ++pos;
    } else if (d[pos] == '\r') {
      if (pos + 1 >= d.size()) break;
      if (d[pos + 1] != '\n') {
        *error = std::string(kUnexpectedBetweenFrames);
        return ParseStatus::kMalformed;
      }
      pos += 2;
    } else {
      break;
    }
  }
  *used = pos;
  if (pos >= d.size() || d[pos] == '\r') return ParseStatus::kNeedMore;
  const size_t start = pos;
  auto too_large_or_more = [&](size_t needed_end) {
    return needed_end - start > max_frame_size ? ParseStatus::kTooLarge : ParseStatus::kNeedMore;
  };

  size_t end = 0, next = 0;
  switch (read_line(d, pos, &end, &next)) {
    case Line::kNeedMore: return too_large_or_more(d.size());
    case Line::kError:
      *error = std::string(kUnexpectedInCommand);
      return ParseStatus::kMalformed;
    case Line::kDone: break;
  }
  Frame f;
  f.command.assign(d.substr(pos, end - pos));
  pos = next;

  std::string name, value;
  while (true) {
    if (pos >= d.size()) return too_large_or_more(d.size());
    if (d[pos] == '\n') {
      ++pos;
      break;
    }
    switch (read_line(d, pos, &end, &next)) {
      case Line::kNeedMore: return too_large_or_more(d.size());
      case Line::kError:
        *error = std::string(kUnexpectedInHeader);
        return ParseStatus::kMalformed;
      case Line::kDone: break;
    }
    if (end == pos) {  // CR LF: the end of the headers
      pos = next;
      break;
    }
    std::string_view line = d.substr(pos, end - pos);
    size_t colon = name_end(line);
    if (colon == std::string_view::npos) {
      // An escape error in the name comes first, as the byte-wise parser meets it first.
      if (!unescape(line, &name, error)) return ParseStatus::kMalformed;
      *error = std::string(kHeaderNoValue) + " " + name;
      return ParseStatus::kMalformed;
    }
    if (!unescape(line.substr(0, colon), &name, error) ||
        !unescape(line.substr(colon + 1), &value, error))
      return ParseStatus::kMalformed;
    if (f.header(name) == nullptr) f.headers.emplace_back(std::move(name), std::move(value));
    pos = next;
  }

  size_t body_start = pos;
  const std::string* length = f.command == "SEND" ? f.header("content-length") : nullptr;
  size_t body_end = 0;
  if (length != nullptr) {
    // RabbitMQ strips spaces around the number (string:strip) and fails on anything else.
    std::string_view text = *length;
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
      *error = std::string(kBadContentLength) + " " + *length;
      return ParseStatus::kMalformed;
    }
    if (n > max_frame_size) return ParseStatus::kTooLarge;
    body_end = body_start + n;
    if (body_end >= d.size()) return too_large_or_more(body_end + 1);
    if (d[body_end] != '\0') {
      *error = std::string(kMissingNul);
      return ParseStatus::kMalformed;
    }
  } else {
    const void* nul = std::memchr(d.data() + body_start, '\0', d.size() - body_start);
    if (nul == nullptr) return too_large_or_more(d.size());
    body_end = static_cast<size_t>(static_cast<const char*>(nul) - d.data());
  }
  if (body_end + 1 - start > max_frame_size) return ParseStatus::kTooLarge;
  f.body.assign(d.substr(body_start, body_end - body_start));
  *out = std::move(f);
  *used = body_end + 1;
  return ParseStatus::kFrame;
}

}  // namespace warren::stomp
