#include "net/tls_byte_stream.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "net/peer_certificate.h"

namespace warren::net {

void TlsByteStream::accept(boost::asio::ip::tcp::socket socket, TlsContext& tls, Ready ready) {
  auto stream = std::make_shared<std::unique_ptr<TlsByteStream>>(
      std::make_unique<TlsByteStream>(std::move(socket), tls));
  // A client that does not finish the handshake in time (silent, or speaking plain text to the
  // TLS port and waiting) is dropped.
  auto timer = std::make_shared<boost::asio::steady_timer>((*stream)->executor());
  timer->expires_after(tls.handshake_timeout());
  timer->async_wait([stream](boost::system::error_code ec) {
    if (!ec && *stream) (*stream)->close();
  });
  (*stream)->ssl().async_handshake(
      boost::asio::ssl::stream_base::server,
      [stream, timer, ready = std::move(ready)](boost::system::error_code ec) {
        timer->cancel();
        if (ec) {
          boost::system::error_code ignored;
          auto peer = (*stream)->socket().remote_endpoint(ignored);
          spdlog::warn("TLS handshake with {}:{} failed: {}", peer.address().to_string(),
                       peer.port(), ec.message());
          (*stream)->close();
          return;
        }
        ready(std::move(*stream));
      });
}

void TlsByteStream::async_write(boost::asio::const_buffer data, Handler h) {
  boost::asio::async_write(stream_, data, std::move(h));
}

void TlsByteStream::close() {
  boost::system::error_code ec;
  stream_.next_layer().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  stream_.next_layer().close(ec);
}

std::optional<std::string> TlsByteStream::verified_peer_common_name() {
  return net::verified_peer_common_name(stream_.native_handle());
}

}  // namespace warren::net
