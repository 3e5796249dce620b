#include "cli/control_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/control_socket_path.h"

namespace warren::cli {

namespace json = boost::json;

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool ControlClient::connect(const std::string& data_dir, std::string* error) {
  ControlSocketPath path(data_dir);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.usable().size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + path.full();
    return false;
  }
  std::memcpy(addr.sun_path, path.usable().c_str(), path.usable().size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = path.full() + ": " + std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

void ControlClient::set_timeout(double seconds) {
  if (fd_ < 0 || seconds <= 0) return;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

bool ControlClient::read_line(std::string* line) {
  for (;;) {
    if (size_t nl = buffer_.find('\n'); nl != std::string::npos) {
      line->assign(buffer_, 0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) timed_out_ = true;
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

json::object ControlClient::call(const json::object& request,
                                 const std::function<void(const json::array&)>& on_rows) {
  std::string out = json::serialize(request) + "\n";
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = ::write(fd_, out.data() + sent, out.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return json::object{{"error", "lost the connection to the server"}, {"exit", 69}};
    sent += static_cast<size_t>(n);
  }
  std::string line;
  while (read_line(&line)) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) break;
    json::object& o = v.as_object();
    if (auto it = o.find("rows"); it != o.end() && it->value().is_array()) {
      on_rows(it->value().as_array());
      continue;
    }
    return std::move(o);
  }
  if (timed_out_) return json::object{{"timeout", true}};
  return json::object{{"error", "lost the connection to the server"}, {"exit", 69}};
}

void ControlClient::wait_closed() {
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

}  // namespace warren::cli
