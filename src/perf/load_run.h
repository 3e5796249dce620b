// What the protocol load tools (warren-mqtt-perf, warren-stomp-perf) share: a loopback client
// socket, and the run itself: subscribers ready first, publishers for the given time, then a
// drain until nothing arrives for a second (at most 30 s). Header-only: each tool is one file.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace warren::perf {

[[noreturn]] inline void fail(const char* tool, const char* what) {
  std::fprintf(stderr, "%s: %s failed: %s\n", tool, what, std::strerror(errno));
  std::exit(2);
}

// A TCP connection to 127.0.0.1:port with Nagle off; exits the process on failure.
inline int connect_loopback(int port, const char* tool) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail(tool, "connect");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline void send_all(int fd, std::string_view data, const char* tool) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) fail(tool, "send");
    data.remove_prefix(static_cast<size_t>(n));
  }
}

struct LoadCounters {
  std::atomic<uint64_t> sent{0}, acked{0}, received{0};
  std::atomic<int> ready{0};  // subscribers ready to receive
};

struct LoadResult {
  double publish_s = 0, total_s = 0;
  uint64_t sent_at_stop = 0;
  uint64_t expected = 0;  // sent x receivers_per_message
};

// subscriber(i) and publisher(i) run in threads of their own; subscribers count themselves in
// n.ready, publishers stop when stop_publishing is set, subscribers when stop_receiving is.
template <class Subscriber, class Publisher>
LoadResult run_load(int subscribers, int publishers, double seconds,
                    uint64_t receivers_per_message, LoadCounters& n,
                    std::atomic<bool>& stop_publishing, std::atomic<bool>& stop_receiving,
                    Subscriber subscriber, Publisher publisher) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::thread> subs, pubs;
  for (int i = 0; i < subscribers; ++i) subs.emplace_back([&, i] { subscriber(i); });
  while (n.ready.load() < subscribers) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  LoadResult r;
  const auto start = Clock::now();
  for (int i = 0; i < publishers; ++i) pubs.emplace_back([&, i] { publisher(i); });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop_publishing = true;
  r.publish_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.sent_at_stop = n.sent.load();
  for (auto& t : pubs) t.join();
  // Subscribers drain what is on its way: until nothing arrives for a second (at most 30 s).
  uint64_t last = n.received.load();
  auto quiet_since = Clock::now();
  const auto drain_deadline = Clock::now() + std::chrono::seconds(30);
  r.expected = n.sent.load() * receivers_per_message;
  while (Clock::now() < drain_deadline && n.received.load() < r.expected) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (n.received.load() != last) {
      last = n.received.load();
      quiet_since = Clock::now();
    } else if (Clock::now() - quiet_since > std::chrono::seconds(1)) {
      break;
    }
  }
  r.total_s = std::chrono::duration<double>(Clock::now() - start).count();
  stop_receiving = true;
  for (auto& t : subs) t.join();
  return r;
}

}  // namespace warren::perf
