// The topic and headers matching cases in tests/data/{topic,headers}_cases.json, shared with the
// integration tests (tests/integration/test_exchanges.py) so the two suites cannot drift. The
// file formats are described in the files' "about" entries. Loading throws std::runtime_error
// (with the file name and what is wrong) on a missing or malformed file.
#pragma once

#include <string>
#include <vector>

#include "common/field_table.h"

namespace warren::testdata {

struct TopicCase {
  std::string pattern;
  std::vector<std::string> match;     // routing keys that must match pattern
  std::vector<std::string> no_match;  // routing keys that must not
};

struct HeadersCase {
  std::string name;
  FieldTable binding;
  std::vector<FieldTable> match;  // a message without headers is an empty table here
  std::vector<FieldTable> no_match;
};

std::vector<TopicCase> LoadTopicCases();
std::vector<HeadersCase> LoadHeadersCases();

// Directory of the data files (the WARREN_TEST_DATA_DIR compile definition).
std::string DataDir();

}  // namespace warren::testdata
