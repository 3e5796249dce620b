// Global runtime parameter verbs (verbs_parameters.cc).
#pragma once

#include <vector>

#include "cli/verbs.h"

namespace warren::cli {

const std::vector<Verb>& parameter_verbs();
int run_parameter_verb(const Options& o, const Verb& v);

}  // namespace warren::cli
