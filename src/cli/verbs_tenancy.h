// Users, vhosts and permissions verbs (verbs_tenancy.cc).
#pragma once

#include <vector>

#include "cli/verbs.h"

namespace warren::cli {

const std::vector<Verb>& tenancy_verbs();
int run_tenancy_verb(const Options& o, const Verb& v);

}  // namespace warren::cli
