// warren-plugins / rabbitmq-plugins (plugins_cli.cc).
#pragma once

#include "cli/verbs.h"

namespace warren::cli {

int run_plugins(const Options& o);

}  // namespace warren::cli
