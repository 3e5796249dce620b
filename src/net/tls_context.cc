#include "net/tls_context.h"

#include <openssl/ssl.h>

namespace warren::net {

namespace ssl = boost::asio::ssl;

std::unique_ptr<TlsContext> TlsContext::create(const TlsOptions& options, std::string* error) {
  std::unique_ptr<TlsContext> t(new TlsContext());  // private constructor
  t->handshake_timeout_ = options.handshake_timeout;
  ssl::context& c = t->context_;
  boost::system::error_code ec;
  // TLS 1.2 and 1.3 only, as RabbitMQ's defaults since 3.8.
  c.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                    ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                    ssl::context::single_dh_use,
                ec);
  auto failed = [&](const std::string& what, const std::string& file) {
    *error = "TLS: cannot use " + what + " " + file + ": " + ec.message();
    return nullptr;
  };
  if (options.certfile.empty() || options.keyfile.empty()) {
    *error = "TLS: a certificate file and a key file are needed (ssl_options.certfile/keyfile)";
    return nullptr;
  }
  if (c.use_certificate_chain_file(options.certfile, ec); ec)
    return failed("certificate file", options.certfile);
  if (c.use_private_key_file(options.keyfile, ssl::context::pem, ec); ec)
    return failed("key file", options.keyfile);
  if (!options.cacertfile.empty())
    if (c.load_verify_file(options.cacertfile, ec); ec)
      return failed("CA certificate file", options.cacertfile);
  if (options.verify_peer) {
    if (options.cacertfile.empty()) {
      *error = "TLS: verify_peer needs a CA certificate file (ssl_options.cacertfile)";
      return nullptr;
    }
    ssl::verify_mode mode = ssl::verify_peer;
    if (options.fail_if_no_peer_cert) mode |= ssl::verify_fail_if_no_peer_cert;
    c.set_verify_mode(mode, ec);
  } else {
    c.set_verify_mode(ssl::verify_none, ec);
  }
  return t;
}

}  // namespace warren::net
