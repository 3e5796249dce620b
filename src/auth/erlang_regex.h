// Regular expressions as RabbitMQ matches permission and policy patterns: Erlang's re (PCRE,
// Perl syntax), unanchored (re:run finds a match anywhere unless the pattern anchors itself).
// One implementation for permissions (access_control) and policies (broker/policy), so a pattern
// means the same in both and is refused with the same words.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace warren::auth {

// What Erlang's re:compile reports for a bad pattern: PCRE's message and the offset in the
// pattern, e.g. {"missing )", 1}.
struct RegexError {
  std::string message;
  size_t offset = 0;
};

class ErlangRegex {
 public:
  ErlangRegex() = default;  // matches nothing
  static std::variant<ErlangRegex, RegexError> compile(std::string_view pattern);

  // Unanchored search. A pathological pattern that exhausts the matcher's limits matches nothing.
  bool search(std::string_view subject) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // shared: compiled patterns are immutable
};

}  // namespace warren::auth
