// The STOMP adapter's settings (rabbitmq.conf stomp.*), fixed when the listener opens.
#pragma once

#include <cstddef>
#include <string>

namespace warren::stomp {

struct Settings {
  // The login and passcode a CONNECT without them uses (stomp.default_user / default_pass; the
  // plugin's default is guest/guest, so such a CONNECT logs in as guest).
  std::string default_login = "guest";
  std::string default_passcode = "guest";
  // The vhost of a CONNECT without a host header (stomp.default_vhost).
  std::string default_vhost = "/";
  // The largest frame read (stomp.max_frame_size; RabbitMQ 3.13's default of 4 MiB). A larger
  // one closes the connection.
  size_t max_frame_size = 4 << 20;
  // NACK without a requeue header requeues (stomp.default_nack_requeue).
  bool default_nack_requeue = true;
  // Milliseconds a client has to log in before it is dropped (stomp.login_timeout).
  unsigned login_timeout_ms = 10'000;
  // stomp.implicit_connect: a first frame other than CONNECT logs in as if a CONNECT without
  // headers had come first (the default user, STOMP 1.0), and no CONNECTED frame is sent.
  bool implicit_connect = false;
};

}  // namespace warren::stomp
