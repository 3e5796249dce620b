// Boost.JSON's compiled part, in exactly one translation unit of the program (policies parse
// their JSON definitions in warren_core). Another layer needing JSON links warren_core and must
// not include <boost/json/src.hpp> again.
#include <boost/json/src.hpp>
