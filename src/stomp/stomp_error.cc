#include "stomp/stomp_error.h"

#include <cctype>

namespace warren::stomp {

StompError broker_error(const broker::Error& e) {
  std::string name(broker::error_name(e.code));
  std::string message;
  for (char c : name) message.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return StompError{std::move(message), name + " - " + e.text, true};
}

}  // namespace warren::stomp
