// Boost.JSON is header-only: its implementation is compiled once, here, for warrenctl.
#include <boost/json/src.hpp>
