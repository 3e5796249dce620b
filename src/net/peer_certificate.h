// The client certificate of a TLS connection as a login: the subject's common name, when the
// client sent a certificate and it verified against the CA (RabbitMQ's ssl_cert_login_from =
// common_name, the default of its AMQP EXTERNAL mechanism and of mqtt.ssl_cert_login).
#pragma once

#include <optional>
#include <string>

struct ssl_st;

namespace warren::net {

std::optional<std::string> verified_peer_common_name(ssl_st* ssl);

}  // namespace warren::net
