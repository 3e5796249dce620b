// The server's log: to the console (stdout) and/or a file (log.file), at log.level, with the
// console at its own level when log.console.level is set.
#pragma once

#include <string>

#include "server/config.h"

namespace warren::server {

bool set_up_logging(const Config& config, std::string* error);

}  // namespace warren::server
