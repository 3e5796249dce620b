// warren-stomp-perf: STOMP 1.2 throughput of a broker (Warren or any other) for the benchmarks in
// bench/stomp_throughput.sh. P publishers SEND `size`-byte messages, S subscribers SUBSCRIBE and
// (ack:client-individual) ACK each MESSAGE they get. Destinations (--destination-kind):
//   topic: publisher i sends to /topic/perf.<run>.<i>, every subscriber subscribes to
//          /topic/perf.<run>.# (each gets every message: fan-in -P 4 -S 1, fan-out -P 1 -S 4);
//   queue: everyone uses /queue/perf-<run> (the subscribers share the messages).
// With --receipts every SEND carries a receipt header and each publisher keeps up to --window
// SENDs awaiting their RECEIPT (the broker sends it once the message is confirmed). Each client is
// a blocking socket on its own thread, writing frames in batches. After --time seconds the
// publishers stop and the subscribers drain; one JSON line reports the rates.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "perf/load_run.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace warren;
constexpr const char* kTool = "warren-stomp-perf";

struct Options {
  int port = 61613;
  int publishers = 1;
  int subscribers = 1;
  std::string ack = "auto";  // or client-individual
  bool receipts = false;
  bool persistent = false;
  std::string kind = "topic";  // or queue
  uint32_t size = 16;
  double time = 10;
  uint32_t window = 1000;
  uint32_t prefetch = 100;  // client-individual only; 0 = no prefetch-count header
  std::string user = "guest", password = "guest";
  std::string vhost = "/";
  bool client_ack() const { return ack != "auto"; }
  bool queue() const { return kind == "queue"; }
};

// One received frame; the views point into the client's buffer (valid until the next read).
struct Frame {
  std::string_view command;
  std::string_view headers;  // "name:value\n" lines
  std::string_view body;

  std::string_view header(std::string_view name) const {
    std::string_view rest = headers;
    while (!rest.empty()) {
      size_t eol = rest.find('\n');
      std::string_view line = rest.substr(0, eol);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > name.size() && line.substr(0, name.size()) == name &&
          line[name.size()] == ':')
        return line.substr(name.size() + 1);  // the first occurrence wins (STOMP 1.2)
      if (eol == std::string_view::npos) break;
      rest.remove_prefix(eol + 1);
    }
    return {};
  }
};

// A connected, logged-in STOMP 1.2 client socket; exits the process on failure (a benchmark
// tool).
class Client {
 public:
  explicit Client(const Options& o) {
    fd_ = perf::connect_loopback(o.port, kTool);
    // CONNECT's header values are not escaped (STOMP 1.2).
    send_all("CONNECT\naccept-version:1.2\nhost:" + o.vhost + "\nlogin:" + o.user +
             "\npasscode:" + o.password + "\nheart-beat:0,0\n\n" + std::string(1, '\0'));
    Frame f;
    if (!next_frame(&f)) fail("CONNECT (connection closed)");
    if (f.command != "CONNECTED") refused("CONNECT", f);
  }
  ~Client() { ::close(fd_); }

  void send_all(std::string_view data) { perf::send_all(fd_, data, kTool); }

  // The next frame (valid until the next call); false at EOF or on a receive timeout (errno).
  bool next_frame(Frame* f) {
    if (have_next_) {  // parsed by buffered()
      *f = next_;
      have_next_ = false;
      return true;
    }
    while (true) {
      if (parse(f)) return true;
      if (pos_ > 0) {
        in_.erase(0, pos_);
        pos_ = 0;
      }
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (n == 0) errno = 0;
        return false;
      }
      in_.append(buf, static_cast<size_t>(n));
    }
  }

  // Whether a whole frame is already buffered (no system call); next_frame() returns it.
  bool buffered() {
    if (!have_next_) have_next_ = parse(&next_);
    return have_next_;
  }
  int fd() const { return fd_; }

  [[noreturn]] static void fail(const char* what) {
    std::fprintf(stderr, "warren-stomp-perf: %s failed: %s\n", what,
                 errno ? std::strerror(errno) : "connection closed");
    std::exit(2);
  }
  [[noreturn]] static void refused(const char* what, const Frame& f) {
    std::fprintf(stderr, "warren-stomp-perf: %s: got %.*s\n%.*s\n%.*s\n", what,
                 static_cast<int>(f.command.size()), f.command.data(),
                 static_cast<int>(f.headers.size()), f.headers.data(),
                 static_cast<int>(f.body.size()), f.body.data());
    std::exit(2);
  }

 private:
  // Parses the frame at pos_ (after any heart-beat EOLs) and moves past it.
  bool parse(Frame* f) {
    size_t p = pos_;
    while (p < in_.size() && (in_[p] == '\n' || in_[p] == '\r')) ++p;
    pos_ = p;
    const std::string_view data(in_);
    size_t eol = data.find('\n', p);
    if (eol == std::string_view::npos) return false;
    size_t end_headers = data.find("\n\n", eol);
    size_t blank = 2;
    // A CRLF blank line before it (searched only up to there: the buffer can hold many frames).
    const std::string_view head = data.substr(0, end_headers);
    if (size_t crlf = head.find("\n\r\n", eol); crlf != std::string_view::npos) {
      end_headers = crlf;
      blank = 3;
    }
    if (end_headers == std::string_view::npos) return false;
    f->command = data.substr(p, eol - p);
    if (!f->command.empty() && f->command.back() == '\r') f->command.remove_suffix(1);
    f->headers = data.substr(eol + 1, end_headers + 1 - (eol + 1));
    const size_t body_at = end_headers + blank;
    size_t body_end;
    std::string_view length = f->header("content-length");
    if (!length.empty()) {
      size_t len = 0;
      std::from_chars(length.data(), length.data() + length.size(), len);
      if (data.size() < body_at + len + 1) return false;
      body_end = body_at + len;
    } else {
      body_end = data.find('\0', body_at);
      if (body_end == std::string_view::npos) return false;
    }
    f->body = data.substr(body_at, body_end - body_at);
    pos_ = body_end + 1;  // past the NUL
    return true;
  }

  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
  Frame next_;  // a frame buffered() parsed (its views stay valid: in_ changes only on a read)
  bool have_next_ = false;
};

std::atomic<bool> g_stop_publishing{false};
std::atomic<bool> g_stop_receiving{false};

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void publisher(const Options& o, const std::string& destination, std::atomic<uint64_t>& sent,
               std::atomic<uint64_t>& acked) {
  Client c(o);
  const std::string payload(o.size, 'x');
  // A SEND is head + [receipt:<n>\n] + tail.
  std::string head = "SEND\ndestination:" + destination + "\n";
  if (o.persistent) head += "persistent:true\n";
  head += "content-length:" + std::to_string(payload.size()) + "\n";
  const std::string tail = "\n" + payload + std::string(1, '\0');
  const size_t batch = std::max<size_t>(1, 64 * 1024 / (head.size() + tail.size() + 20));
  std::string out;
  uint64_t next_receipt = 0;
  uint64_t in_flight = 0;
  auto read_receipt = [&] {
    Frame f;
    if (!c.next_frame(&f)) Client::fail("reading RECEIPTs");
    if (f.command == "RECEIPT") {
      --in_flight;
      acked.fetch_add(1, std::memory_order_relaxed);
    } else if (f.command == "ERROR") {
      Client::refused("SEND", f);
    }
  };
  while (!g_stop_publishing.load(std::memory_order_relaxed)) {
    out.clear();
    size_t n = batch;
    if (o.receipts) n = std::min<uint64_t>(n, o.window - in_flight);
    for (size_t i = 0; i < n; ++i) {
      out += head;
      if (o.receipts) {
        out += "receipt:";
        append_number(out, ++next_receipt);
        out.push_back('\n');
      }
      out += tail;
    }
    if (!out.empty()) {
      c.send_all(out);
      sent.fetch_add(n, std::memory_order_relaxed);
      in_flight += n;
    }
    if (o.receipts) {
      // Read RECEIPTs: block while the window is full, else take what is buffered.
      do read_receipt();
      while (in_flight >= o.window || c.buffered());
    }
  }
  // With receipts: wait (briefly) for the last ones.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (o.receipts && in_flight > 0 && Clock::now() < deadline) read_receipt();
  c.send_all(std::string("DISCONNECT\n\n") + '\0');
}

void subscriber(const Options& o, const std::string& destination, std::atomic<uint64_t>& received,
                std::atomic<int>& ready, int index) {
  Client c(o);
  std::string sub = "SUBSCRIBE\nid:perf-" + std::to_string(index) + "\ndestination:" + destination +
                    "\nack:" + o.ack + "\n";
  if (o.client_ack() && o.prefetch > 0) sub += "prefetch-count:" + std::to_string(o.prefetch) + "\n";
  sub += "receipt:subscribed\n\n";
  sub.push_back('\0');
  c.send_all(sub);
  Frame f;
  if (!c.next_frame(&f)) Client::fail("SUBSCRIBE");
  if (f.command != "RECEIPT") Client::refused("SUBSCRIBE", f);
  ready.fetch_add(1);
  timeval tv{0, 200 * 1000};  // wake up to see the stop flag
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string acks;
  uint64_t count = 0;
  while (!g_stop_receiving.load(std::memory_order_relaxed)) {
    if (!c.next_frame(&f)) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (g_stop_receiving.load()) break;
      Client::fail("receiving MESSAGEs");
    }
    if (f.command == "ERROR") Client::refused("receiving", f);
    if (f.command != "MESSAGE") continue;
    ++count;
    if (o.client_ack()) {
      acks += "ACK\nid:";
      acks += f.header("ack");
      acks += "\n\n";
      acks.push_back('\0');
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
  CLI::App app{"STOMP 1.2 throughput: publishers to /topic/perf.<run>.<i> with subscribers on "
               "/topic/perf.<run>.#, or everyone on /queue/perf-<run>",
               "warren-stomp-perf"};
  app.add_option("--port", o.port, "STOMP port")->capture_default_str();
  app.add_option("-P,--publishers", o.publishers, "publishing clients")->capture_default_str();
  app.add_option("-S,--subscribers", o.subscribers,
                 "subscribing clients (topic: each gets every message; queue: they share them)")
      ->capture_default_str();
  app.add_option("--ack", o.ack, "subscriptions' ack mode")
      ->check(CLI::IsMember({"auto", "client-individual"}))
      ->capture_default_str();
  app.add_flag("--receipts", o.receipts, "a receipt header on every SEND (see --window)");
  app.add_option("--window", o.window, "--receipts: SENDs awaiting their RECEIPT per publisher")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--prefetch", o.prefetch,
                 "client-individual: the SUBSCRIBE's prefetch-count (0: no header)")
      ->capture_default_str();
  app.add_flag("--persistent", o.persistent, "SEND with persistent:true");
  app.add_option("--destination-kind", o.kind, "topic (fan-in / fan-out) or queue (shared)")
      ->check(CLI::IsMember({"topic", "queue"}))
      ->capture_default_str();
  app.add_option("-s,--size", o.size, "body bytes")->capture_default_str();
  app.add_option("-t,--time", o.time, "seconds of publishing")->capture_default_str();
  app.add_option("-u,--user", o.user)->capture_default_str();
  app.add_option("--password", o.password)->capture_default_str();
  app.add_option("--vhost", o.vhost, "the CONNECT's host header")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string run = std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  const std::string sub_destination =
      o.queue() ? "/queue/perf-" + run : "/topic/perf." + run + ".#";
  perf::LoadCounters n;
  const perf::LoadResult r = perf::run_load(
      o.subscribers, o.publishers, o.time,
      static_cast<uint64_t>(o.queue() ? 1 : o.subscribers), n, g_stop_publishing,
      g_stop_receiving,
      [&](int i) { subscriber(o, sub_destination, n.received, n.ready, i); },
      [&](int i) {
        publisher(o, o.queue() ? sub_destination : "/topic/perf." + run + "." + std::to_string(i),
                  n.sent, n.acked);
      });
  std::printf(
      "{\"publishers\": %d, \"subscribers\": %d, \"destination_kind\": \"%s\", \"ack\": \"%s\", "
      "\"receipts\": %s, \"size\": %u, \"publish_s\": %.2f, \"total_s\": %.2f, "
      "\"sent\": %llu, \"receipted\": %llu, \"received\": %llu, \"expected\": %llu, "
      "\"publish_rate\": %.0f, \"receive_rate\": %.0f}\n",
      o.publishers, o.subscribers, o.kind.c_str(), o.ack.c_str(), o.receipts ? "true" : "false",
      o.size, r.publish_s, r.total_s, static_cast<unsigned long long>(n.sent.load()),
      static_cast<unsigned long long>(n.acked.load()),
      static_cast<unsigned long long>(n.received.load()),
      static_cast<unsigned long long>(r.expected), r.sent_at_stop / r.publish_s,
      n.received.load() / r.total_s);
  return 0;
}
