// Where a binding routes to, and the string hash the routing indexes share.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace warren::broker {

class Queue;
class Exchange;

// A binding's destination: exactly one of queue / exchange is set.
struct Destination {
  Queue* queue = nullptr;
  Exchange* exchange = nullptr;
  bool operator==(const Destination&) const = default;
};

// Heterogeneous lookup by string_view in maps keyed by std::string (no key copy per lookup).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace warren::broker
