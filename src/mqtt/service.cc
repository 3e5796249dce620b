#include "mqtt/service.h"

namespace warren::mqtt {

std::string Service::key(std::string_view vhost, std::string_view client_id) {
  std::string k(vhost);
  k.push_back('\0');  // a vhost name cannot contain NUL: the key is unambiguous
  k.append(client_id);
  return k;
}

Connection* Service::claim(std::string_view vhost, std::string_view client_id, Connection* c) {
  Connection*& holder = sessions_[key(vhost, client_id)];
  Connection* previous = holder == c ? nullptr : holder;
  holder = c;
  return previous;
}

void Service::release(std::string_view vhost, std::string_view client_id, const Connection* c) {
  auto it = sessions_.find(key(vhost, client_id));
  if (it != sessions_.end() && it->second == c) sessions_.erase(it);
}

}  // namespace warren::mqtt
