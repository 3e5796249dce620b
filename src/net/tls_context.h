// The TLS settings of the TLS listeners (amqps, mqtts, stomps; RabbitMQ's ssl_options): the
// server certificate and key, the CA that signs client certificates, whether to ask for
// (verify_peer) and require (fail_if_no_peer_cert) one, and how long a client may take to finish
// the TLS handshake.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace warren::net {

struct TlsOptions {
  std::string certfile, keyfile, cacertfile;
  bool verify_peer = false;
  bool fail_if_no_peer_cert = false;
  std::chrono::milliseconds handshake_timeout{5000};  // RabbitMQ's ssl_handshake_timeout
};

class TlsContext {
 public:
  // nullptr with *error naming the file or setting at fault.
  static std::unique_ptr<TlsContext> create(const TlsOptions& options, std::string* error);

  boost::asio::ssl::context& ssl() { return context_; }
  std::chrono::milliseconds handshake_timeout() const { return handshake_timeout_; }

 private:
  TlsContext() : context_(boost::asio::ssl::context::tls_server) {}
  boost::asio::ssl::context context_;
  std::chrono::milliseconds handshake_timeout_{5000};
};

}  // namespace warren::net
