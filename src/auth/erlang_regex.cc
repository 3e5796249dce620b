#include "auth/erlang_regex.h"

#include <algorithm>
#include <stdexcept>

#include <boost/regex.hpp>

namespace warren::auth {

struct ErlangRegex::Impl {
  boost::regex re;
};

namespace {

// PCRE's wording for the errors people make most; Boost's otherwise.
RegexError pcre_error(const boost::regex_error& e, std::string_view pattern) {
  RegexError out{e.what(), static_cast<size_t>(std::max<std::ptrdiff_t>(e.position(), 0))};
  switch (e.code()) {
    case boost::regex_constants::error_brack:
      return {"missing terminating ] for character class", pattern.size()};
    case boost::regex_constants::error_paren: return {"missing )", pattern.size()};
    case boost::regex_constants::error_badrepeat: out.message = "nothing to repeat"; return out;
    case boost::regex_constants::error_escape: return {"\\ at end of pattern", pattern.size()};
    default: return out;
  }
}

}  // namespace

std::variant<ErlangRegex, RegexError> ErlangRegex::compile(std::string_view pattern) {
  // Boost reports a bad pattern only by throwing; caught here, at the edge (operator input).
  try {
    auto impl = std::make_shared<Impl>();
    impl->re.assign(pattern.begin(), pattern.end(), boost::regex::perl);
    ErlangRegex r;
    r.impl_ = std::move(impl);
    return r;
  } catch (const boost::regex_error& e) {
    return pcre_error(e, pattern);
  }
}

bool ErlangRegex::search(std::string_view subject) const {
  if (!impl_) return false;
  try {
    return boost::regex_search(subject.begin(), subject.end(), impl_->re);
  } catch (const std::runtime_error&) {  // match complexity limit exceeded
    return false;
  }
}

}  // namespace warren::auth
