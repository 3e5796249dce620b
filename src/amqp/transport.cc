#include "amqp/transport.h"

#include "net/peer_certificate.h"

namespace warren::amqp {

std::optional<std::string> Transport::verified_peer_common_name() {
  auto* tls = std::get_if<TlsStream>(&stream_);
  if (tls == nullptr) return std::nullopt;
  return net::verified_peer_common_name(tls->native_handle());
}

}  // namespace warren::amqp
