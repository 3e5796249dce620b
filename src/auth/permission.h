// What a permission check asks for, and the error for a pattern that does not compile; shared by
// the resource permissions (access_control.h) and the topic permissions (topic_permissions.h).
#pragma once

#include <string>

#include "auth/erlang_regex.h"

namespace warren::auth {

enum class Permission { kConfigure, kWrite, kRead };

struct InvalidPattern {
  std::string pattern;
  RegexError error;
};

}  // namespace warren::auth
