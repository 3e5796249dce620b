// warren-mqtt-perf: MQTT 3.1.1 throughput of a broker (Warren or any other) for the benchmarks in
// bench/mqtt_throughput.sh. P publishers publish `size`-byte messages to perf/<run>/<i> at QoS 0
// or 1 (QoS 1: up to --window PUBLISHes awaiting PUBACK), S subscribers subscribe to
// perf/<run>/# (fan-in: -P 4 -S 1; fan-out: -P 1 -S 4) and PUBACK what they receive. Each
// client is a blocking socket on its own thread, writing packets in batches. After --time
// seconds the publishers stop and the subscribers drain; one JSON line reports the rates.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "perf/load_run.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace warren;
constexpr const char* kTool = "warren-mqtt-perf";

struct Options {
  int port = 1883;
  int publishers = 1;
  int subscribers = 1;
  int qos = 0;
  uint32_t size = 16;
  double time = 10;
  uint32_t window = 1000;
  std::string user = "guest", password = "guest";
  int version = 4;  // CONNECT protocol level: 4 = MQTT 3.1.1, 5 = MQTT 5.0 (no properties sent)
  bool v5() const { return version == 5; }
};

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void put_str(std::string& out, const std::string& s) {
  put_u16(out, static_cast<uint16_t>(s.size()));
  out += s;
}

void fixed_header(std::string& out, uint8_t first, size_t remaining) {
  out.push_back(static_cast<char>(first));
  do {
    uint8_t b = remaining & 0x7F;
    remaining >>= 7;
    if (remaining) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (remaining);
}

// A connected, logged-in MQTT client socket; exits the process on failure (a benchmark tool).
class Client {
 public:
  Client(const Options& o, const std::string& client_id) {
    fd_ = perf::connect_loopback(o.port, kTool);
    std::string body;
    put_str(body, "MQTT");
    body.push_back(static_cast<char>(o.version));
    body.push_back(static_cast<char>(0x02 | 0x80 | 0x40));  // clean session, user, password
    put_u16(body, 0);  // keep-alive off
    if (o.v5()) body.push_back(0);  // no properties
    put_str(body, client_id);
    put_str(body, o.user);
    put_str(body, o.password);
    std::string packet;
    fixed_header(packet, 0x10, body.size());
    send_all(packet + body);
    uint8_t type = 0;
    std::string_view reply;
    // 3.1.1: flags and return code; 5.0: flags, reason code and properties.
    if (!next_packet(&type, &reply) || (type >> 4) != 2 || reply.size() < 2 || reply[1] != 0)
      fail("CONNACK refused");
  }
  ~Client() { ::close(fd_); }

  void send_all(std::string_view data) { perf::send_all(fd_, data, kTool); }

  // The next packet's type and body (valid until the next call); false at EOF.
  bool next_packet(uint8_t* type, std::string_view* body) {
    while (true) {
      if (in_.size() - pos_ >= 2) {
        size_t i = pos_ + 1, len = 0, shift = 0;
        bool complete = false;
        while (i < in_.size() && i < pos_ + 5) {
          const uint8_t b = static_cast<uint8_t>(in_[i++]);
          len |= static_cast<size_t>(b & 0x7F) << shift;
          shift += 7;
          if (!(b & 0x80)) {
            complete = true;
            break;
          }
        }
        if (complete && in_.size() - i >= len) {
          *type = static_cast<uint8_t>(in_[pos_]);
          *body = std::string_view(in_).substr(i, len);
          pos_ = i + len;
          return true;
        }
      }
      if (pos_ > 0) {
        in_.erase(0, pos_);
        pos_ = 0;
      }
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in_.append(buf, static_cast<size_t>(n));
    }
  }

  // Whether a packet is already buffered (no system call).
  bool buffered() const { return in_.size() - pos_ >= 2; }
  int fd() const { return fd_; }

  [[noreturn]] static void fail(const char* what) {
    std::fprintf(stderr, "warren-mqtt-perf: %s failed: %s\n", what, std::strerror(errno));
    std::exit(2);
  }

 private:
  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
};

std::atomic<bool> g_stop_publishing{false};
std::atomic<bool> g_stop_receiving{false};

void publisher(const Options& o, const std::string& topic, std::atomic<uint64_t>& sent,
               std::atomic<uint64_t>& acked, int index) {
  Client c(o, "perf-pub-" + std::to_string(index) + "-" + std::to_string(::getpid()));
  const std::string payload(o.size, 'x');
  // One PUBLISH, re-stamped with a packet id for QoS 1.
  std::string one;
  const size_t remaining = 2 + topic.size() + (o.qos ? 2 : 0) + (o.v5() ? 1 : 0) + payload.size();
  fixed_header(one, static_cast<uint8_t>(0x30 | (o.qos << 1)), remaining);
  put_str(one, topic);
  const size_t id_at = one.size();
  if (o.qos) put_u16(one, 0);
  if (o.v5()) one.push_back(0);  // no properties
  one += payload;
  const size_t batch = std::max<size_t>(1, 64 * 1024 / one.size());
  std::string out;
  uint16_t id = 0;
  uint64_t in_flight = 0;
  while (!g_stop_publishing.load(std::memory_order_relaxed)) {
    out.clear();
    size_t n = batch;
    if (o.qos) n = std::min<uint64_t>(n, o.window - in_flight);
    for (size_t i = 0; i < n; ++i) {
      out += one;
      if (o.qos) {
        id = id == 0xFFFF ? 1 : id + 1;
        out[out.size() - one.size() + id_at] = static_cast<char>(id >> 8);
        out[out.size() - one.size() + id_at + 1] = static_cast<char>(id & 0xFF);
      }
    }
    if (!out.empty()) {
      c.send_all(out);
      sent.fetch_add(n, std::memory_order_relaxed);
      in_flight += n;
    }
    if (o.qos) {
      // Read PUBACKs: block while the window is full, else take what is buffered.
      do {
        uint8_t type;
        std::string_view body;
        if (!c.next_packet(&type, &body)) return;
        if ((type >> 4) == 4) {
          --in_flight;
          acked.fetch_add(1, std::memory_order_relaxed);
        }
      } while (in_flight >= o.window || c.buffered());
    }
  }
  // QoS 1: wait (briefly) for the last PUBACKs.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (o.qos && in_flight > 0 && Clock::now() < deadline) {
    uint8_t type;
    std::string_view body;
    if (!c.next_packet(&type, &body)) return;
    if ((type >> 4) == 4) {
      --in_flight;
      acked.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void subscriber(const Options& o, const std::string& filter, std::atomic<uint64_t>& received,
                std::atomic<int>& ready, int index) {
  Client c(o, "perf-sub-" + std::to_string(index) + "-" + std::to_string(::getpid()));
  std::string sub;
  std::string body;
  put_u16(body, 1);
  if (o.v5()) body.push_back(0);  // no properties
  put_str(body, filter);
  body.push_back(static_cast<char>(o.qos));
  fixed_header(sub, 0x82, body.size());
  c.send_all(sub + body);
  uint8_t type;
  std::string_view reply;
  if (!c.next_packet(&type, &reply) || (type >> 4) != 9) Client::fail("SUBACK");
  ready.fetch_add(1);
  timeval tv{0, 200 * 1000};  // wake up to see the stop flag
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string acks;
  uint64_t count = 0;
  while (!g_stop_receiving.load(std::memory_order_relaxed)) {
    if (!c.next_packet(&type, &reply)) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return;
    }
    if ((type >> 4) != 3) continue;
    ++count;
    if (((type >> 1) & 3) != 0) {
      const size_t topic_len = (static_cast<uint8_t>(reply[0]) << 8) | static_cast<uint8_t>(reply[1]);
      acks.push_back(0x40);
      acks.push_back(0x02);
      acks.append(reply.substr(2 + topic_len, 2));
    }
    if (!c.buffered()) {  // the batch read is handled: acknowledge it and publish the count
      if (!acks.empty()) {
        c.send_all(acks);
        acks.clear();
      }
      received.fetch_add(count, std::memory_order_relaxed);
      count = 0;
    }
  }
  received.fetch_add(count, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"MQTT 3.1.1 / 5.0 throughput: publishers to perf/<run>/<i>, subscribers on perf/<run>/#",
               "warren-mqtt-perf"};
  app.add_option("--port", o.port, "MQTT port")->capture_default_str();
  app.add_option("-P,--publishers", o.publishers, "publishing clients")->capture_default_str();
  app.add_option("-S,--subscribers", o.subscribers, "subscribing clients (each gets every message)")
      ->capture_default_str();
  app.add_option("-q,--qos", o.qos, "QoS of publishes and subscriptions (0 or 1)")
      ->check(CLI::Range(0, 1))
      ->capture_default_str();
  app.add_option("-s,--size", o.size, "payload bytes")->capture_default_str();
  app.add_option("-t,--time", o.time, "seconds of publishing")->capture_default_str();
  app.add_option("--window", o.window, "QoS 1: PUBLISHes awaiting PUBACK per publisher")
      ->check(CLI::Range(1u, 65000u))
      ->capture_default_str();
  app.add_option("--mqtt-version", o.version, "protocol level: 4 (MQTT 3.1.1) or 5 (MQTT 5.0)")
      ->check(CLI::IsMember({4, 5}))
      ->capture_default_str();
  app.add_option("-u,--user", o.user)->capture_default_str();
  app.add_option("--password", o.password)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string run = std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  perf::LoadCounters n;
  const perf::LoadResult r = perf::run_load(
      o.subscribers, o.publishers, o.time, static_cast<uint64_t>(o.subscribers), n,
      g_stop_publishing, g_stop_receiving,
      [&](int i) { subscriber(o, "perf/" + run + "/#", n.received, n.ready, i); },
      [&](int i) { publisher(o, "perf/" + run + "/" + std::to_string(i), n.sent, n.acked, i); });
  std::printf(
      "{\"mqtt_version\": %d, \"publishers\": %d, \"subscribers\": %d, \"qos\": %d, \"size\": %u, \"publish_s\": %.2f, "
      "\"sent\": %llu, \"acked\": %llu, \"received\": %llu, \"expected\": %llu, "
      "\"publish_rate\": %.0f, \"receive_rate\": %.0f}\n",
      o.version, o.publishers, o.subscribers, o.qos, o.size, r.publish_s,
      static_cast<unsigned long long>(n.sent.load()),
      static_cast<unsigned long long>(n.acked.load()),
      static_cast<unsigned long long>(n.received.load()),
      static_cast<unsigned long long>(r.expected), r.sent_at_stop / r.publish_s,
      n.received.load() / r.total_s);
  return 0;
}
