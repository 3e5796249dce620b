// warren-perf: AMQP 0-9-1 load generator (in the spirit of RabbitMQ's PerfTest and lavinmqperf).
// Producers and consumers each run on their own connection and thread; the main thread declares
// the queues, starts everybody at once, prints a line per second and a summary at the end.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/field_table.h"
#include "perf/uri.h"
#include "perf/workers.h"

namespace warren::perf {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_signal(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C kills at once
}

double seconds_between(uint64_t from_ns, uint64_t to_ns) {
  return to_ns > from_ns ? double(to_ns - from_ns) / 1e9 : 0.0;
}

double us(uint64_t ns) { return double(ns) / 1000.0; }

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

struct Totals {
  uint64_t sent = 0, confirmed = 0, nacked = 0, received = 0;
};

struct Run {
  Options opts;
  ConnParams params;
  std::vector<std::string> queue_names;
  std::vector<std::unique_ptr<WorkerStats>> pstats, cstats;
  std::vector<std::unique_ptr<Worker>> workers;  // producers first
  std::vector<std::thread> threads;
  FILE* info = stdout;

  Totals totals() const {
    Totals t;
    for (auto& s : pstats) {
      t.sent += s->sent.load(std::memory_order_relaxed);
      t.confirmed += s->confirmed.load(std::memory_order_relaxed);
      t.nacked += s->nacked.load(std::memory_order_relaxed);
    }
    for (auto& s : cstats) t.received += s->received.load(std::memory_order_relaxed);
    return t;
  }
  Histogram::Snapshot latency() const {
    Histogram::Snapshot h;
    for (auto& s : cstats) h.add(s->latency.snapshot());
    return h;
  }
  Histogram::Snapshot confirm_latency() const {
    Histogram::Snapshot h;
    for (auto& s : pstats) h.add(s->confirm_latency.snapshot());
    return h;
  }
  template <class F>
  bool all_stats(F f) const {
    for (auto& s : pstats)
      if (!f(*s)) return false;
    for (auto& s : cstats)
      if (!f(*s)) return false;
    return true;
  }
  bool any_failed() const {
    return !all_stats([](const WorkerStats& s) { return !s.failed.load(std::memory_order_acquire); });
  }
  void report_errors() const {
    for (size_t i = 0; i < pstats.size(); ++i)
      if (pstats[i]->failed.load(std::memory_order_acquire))
        std::fprintf(stderr, "warren-perf: producer #%zu: %s\n", i, pstats[i]->error.c_str());
    for (size_t i = 0; i < cstats.size(); ++i)
      if (cstats[i]->failed.load(std::memory_order_acquire))
        std::fprintf(stderr, "warren-perf: consumer #%zu: %s\n", i, cstats[i]->error.c_str());
  }
};

// --queue-args "k=v,k=v": integers become signed 32-bit ('I') or, when they do not fit, 64-bit
// ('l') values, true/false booleans, anything else a long string ('S'). Sets *err on failure.
std::optional<FieldTable> parse_queue_args(std::string_view spec, std::string* err) {
  FieldTable t;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq > 255) {
      *err = "expected KEY=VALUE, got '" + std::string(item) + "'";
      return std::nullopt;
    }
    std::string key(item.substr(0, eq));
    std::string_view value = item.substr(eq + 1);
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (!value.empty() && ec == std::errc() && ptr == value.data() + value.size()) {
      if (n >= INT32_MIN && n <= INT32_MAX) {
        t.set(std::move(key), static_cast<int32_t>(n));
      } else {
        t.set(std::move(key), n);
      }
    } else if (value == "true" || value == "false") {
      t.set(std::move(key), value == "true");
    } else {
      t.set(std::move(key), value);
    }
  }
  return t;
}

// --priority "N" or "random:A-B" (0 <= A <= B <= 255). Sets *err on failure.
bool parse_priority(std::string_view spec, int* min, int* max, std::string* err) {
  auto number = [](std::string_view s, int* out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return !s.empty() && ec == std::errc() && ptr == s.data() + s.size() && *out >= 0 &&
           *out <= 255;
  };
  constexpr std::string_view kRandom = "random:";
  bool ok;
  if (spec.substr(0, kRandom.size()) == kRandom) {
    std::string_view range = spec.substr(kRandom.size());
    size_t dash = range.find('-');
    ok = dash != std::string_view::npos && number(range.substr(0, dash), min) &&
         number(range.substr(dash + 1), max) && *min <= *max;
  } else {
    ok = number(spec, min);
    *max = *min;
  }
  if (!ok) *err = "expected N or random:A-B with 0 <= A <= B <= 255, got '" + std::string(spec) + "'";
  return ok;
}

// Declares (and binds, and purges) the queues on a short-lived connection of its own.
bool declare_topology(Run& run) {
  const Options& o = run.opts;
  ConnParams p = run.params;
  p.name = "warren-perf setup";
  Connection c(p);
  auto failed = [&](const char* what) {
    std::fprintf(stderr, "warren-perf: %s failed: %s\n", what, c.error().c_str());
    c.close();
    return false;
  };
  if (!c.open(15s)) return failed("connecting to the broker");
  if (!o.exchange.empty() && o.exchange.rfind("amq.", 0) != 0) {
    amqp::ExchangeDeclare d;
    d.exchange = o.exchange;
    d.type = o.exchange_type;
    d.durable = o.durable;
    if (!c.call(d, amqp::ExchangeDeclareOk::kId)) return failed("exchange.declare");
  }
  uint64_t purged = 0;
  for (const std::string& q : run.queue_names) {
    amqp::QueueDeclare d;
    d.queue = q;
    d.durable = o.durable;
    d.arguments = o.queue_args;
    if (!c.call(d, amqp::QueueDeclareOk::kId)) return failed("queue.declare");
    if (!o.exchange.empty()) {
      amqp::QueueBind b;
      b.queue = q;
      b.exchange = o.exchange;
      b.routing_key = q;
      if (!c.call(b, amqp::QueueBindOk::kId)) return failed("queue.bind");
    }
    if (!o.no_purge) {
      amqp::QueuePurge pg;
      pg.queue = q;
      if (!c.call(pg, amqp::QueuePurgeOk::kId)) return failed("queue.purge");
      Reader r(c.reply());
      amqp::QueuePurgeOk ok;
      if (ok.decode(r)) purged += ok.message_count;
    }
  }
  c.close();
  if (c.failed()) return failed("closing the setup connection");
  if (purged > 0) std::fprintf(run.info, "purged %llu message(s)\n", (unsigned long long)purged);
  return true;
}

void print_tick(const Run& run, double t, double dt, const Totals& cur, const Totals& prev,
                const Histogram::Snapshot& lat) {
  const Options& o = run.opts;
  char line[512];
  int n = std::snprintf(line, sizeof line, "time %7.3fs", t);
  auto rate = [dt](uint64_t a, uint64_t b) { return dt > 0 ? double(a - b) / dt : 0.0; };
  if (o.producers > 0) {
    n += std::snprintf(line + n, sizeof line - n, " | sent %9.0f msg/s", rate(cur.sent, prev.sent));
    if (o.confirm > 0) {
      n += std::snprintf(line + n, sizeof line - n, " | confirmed %9.0f msg/s",
                         rate(cur.confirmed, prev.confirmed));
      if (cur.nacked != prev.nacked)
        n += std::snprintf(line + n, sizeof line - n, " | nacked %9.0f msg/s",
                           rate(cur.nacked, prev.nacked));
    }
  }
  if (o.consumers > 0) {
    n += std::snprintf(line + n, sizeof line - n, " | received %9.0f msg/s",
                       rate(cur.received, prev.received));
    if (lat.total > 0) {
      n += std::snprintf(line + n, sizeof line - n, " | latency p50 %.0f µs p99 %.0f µs",
                         us(lat.quantile(0.50)), us(lat.quantile(0.99)));
    }
  }
  std::fprintf(run.info, "%s\n", line);
  std::fflush(run.info);
}

std::string latency_json(const Histogram::Snapshot& h) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"samples\":%llu,\"p50\":%.1f,\"p75\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                (unsigned long long)h.total, us(h.quantile(0.50)), us(h.quantile(0.75)),
                us(h.quantile(0.95)), us(h.quantile(0.99)), us(h.max));
  return buf;
}

void print_latency(FILE* f, const char* label, const Histogram::Snapshot& h) {
  std::fprintf(f, "  %-20s p50 %.0f, p75 %.0f, p95 %.0f, p99 %.0f, max %.0f (%llu samples)\n", label,
               us(h.quantile(0.50)), us(h.quantile(0.75)), us(h.quantile(0.95)),
               us(h.quantile(0.99)), us(h.max), (unsigned long long)h.total);
}

int run_test(Run& run) {
  const Options& o = run.opts;
  for (int i = 0; i < o.producers; ++i) run.pstats.push_back(std::make_unique<WorkerStats>());
  for (int i = 0; i < o.consumers; ++i) run.cstats.push_back(std::make_unique<WorkerStats>());

  const size_t nq = run.queue_names.size();
  for (int i = 0; i < o.producers; ++i) {
    std::vector<std::string> keys;  // every queue, round-robin, each producer starting elsewhere
    for (size_t k = 0; k < nq; ++k) keys.push_back(run.queue_names[(i + k) % nq]);
    ConnParams p = run.params;
    p.name = "warren-perf producer " + std::to_string(i);
    run.workers.push_back(std::make_unique<Producer>(p, o, *run.pstats[i], std::move(keys)));
  }
  for (int i = 0; i < o.consumers; ++i) {
    std::vector<std::string> qs;
    if (size_t(o.consumers) >= nq) {
      qs.push_back(run.queue_names[i % nq]);
    } else {
      for (size_t k = i; k < nq; k += o.consumers) qs.push_back(run.queue_names[k]);
    }
    ConnParams p = run.params;
    p.name = "warren-perf consumer " + std::to_string(i);
    run.workers.push_back(std::make_unique<Consumer>(p, o, *run.cstats[i], std::move(qs)));
  }
  for (size_t i = 0; i < run.workers.size(); ++i) {
    Worker* w = run.workers[i].get();
    run.threads.emplace_back([w] { w->run(); });
    char name[16];
    bool producer = i < size_t(o.producers);
    std::snprintf(name, sizeof name, "perf-%c%zu", producer ? 'p' : 'c',
                  producer ? i : i - o.producers);
    pthread_setname_np(run.threads.back().native_handle(), name);
  }

  auto join_all = [&] {
    for (auto& w : run.workers) w->post_stop();
    for (auto& t : run.threads) t.join();
  };

  // Everybody connected and set up (consumers consuming) before the clock starts.
  auto ready_deadline = Clock::now() + 30s;
  while (!run.all_stats([](const WorkerStats& s) { return s.ready.load(std::memory_order_acquire); })) {
    if (run.any_failed() || g_interrupted || Clock::now() > ready_deadline) {
      join_all();
      run.report_errors();
      if (!run.any_failed()) std::fprintf(stderr, "warren-perf: workers did not get ready\n");
      return 1;
    }
    std::this_thread::sleep_for(5ms);
  }

  const uint64_t start = now_ns();
  for (size_t i = run.workers.size(); i-- > 0;) run.workers[i]->post_begin(start);  // consumers first

  Totals prev;
  Histogram::Snapshot prev_lat;
  uint64_t prev_tick = start;
  uint64_t next_tick = start + 1'000'000'000ull;
  uint64_t last_progress_ns = start;
  uint64_t last_received = 0;
  uint64_t end_ns = 0;
  const char* why = "";
  for (;;) {
    std::this_thread::sleep_for(10ms);
    uint64_t now = now_ns();
    Totals cur = run.totals();
    if (cur.received != last_received) {
      last_received = cur.received;
      last_progress_ns = now;
    }
    if (now >= next_tick) {
      Histogram::Snapshot lat = run.latency();
      print_tick(run, seconds_between(start, now), seconds_between(prev_tick, now), cur, prev,
                 lat.minus(prev_lat));
      prev = cur;
      prev_lat = std::move(lat);
      prev_tick = now;
      while (next_tick <= now) next_tick += 1'000'000'000ull;
    }
    auto finished = [](const WorkerStats& s) { return s.finished.load(std::memory_order_acquire); };
    auto done = [](const WorkerStats& s) { return s.done.load(std::memory_order_acquire); };
    bool producers_finished =
        o.producers > 0 && o.pmessages > 0 &&
        std::all_of(run.pstats.begin(), run.pstats.end(), [&](auto& s) { return finished(*s); });
    bool consumers_finished =
        o.consumers > 0 && o.cmessages > 0 &&
        std::all_of(run.cstats.begin(), run.cstats.end(), [&](auto& s) { return finished(*s); });
    if (run.any_failed()) {
      why = "error";
    } else if (g_interrupted) {
      why = "interrupted";
    } else if (o.time > 0 && seconds_between(start, now) >= o.time) {
      why = "time limit";
    } else if (consumers_finished) {
      why = "consumers received --cmessages";
    } else if (producers_finished && o.consumers == 0) {
      why = "producers sent --pmessages";
    } else if (producers_finished && o.cmessages == 0 &&
               cur.received >= cur.sent - std::min(cur.sent, cur.nacked)) {
      why = "consumers received everything sent";
    } else if (producers_finished && now - last_progress_ns > 5'000'000'000ull) {
      why = "producers done and consumers idle for 5 s";
    } else if (run.all_stats(done)) {
      why = "all connections closed";
    } else {
      continue;
    }
    end_ns = now;
    break;
  }

  // Numbers are taken at the stop decision; closing (which may wait for a flow-controlled or
  // backlogged connection) happens after the summary.
  for (auto& w : run.workers) w->post_stop();
  const double duration = seconds_between(start, end_ns);
  Totals t = run.totals();
  Histogram::Snapshot lat = run.latency();
  Histogram::Snapshot clat = run.confirm_latency();
  bool failed = run.any_failed();
  run.report_errors();

  auto per_s = [duration](uint64_t n) { return duration > 0 ? double(n) / duration : 0.0; };
  FILE* f = run.info;
  std::fprintf(f, "summary: %.3f s (%s), %d producer(s), %d consumer(s), %u-byte messages\n",
               duration, why, o.producers, o.consumers, o.size);
  if (o.producers > 0) {
    std::fprintf(f, "  sent:      %12llu msgs, %10.0f msg/s\n", (unsigned long long)t.sent,
                 per_s(t.sent));
    if (o.confirm > 0) {
      std::fprintf(f, "  confirmed: %12llu msgs, %10.0f msg/s (nacked %llu)\n",
                   (unsigned long long)t.confirmed, per_s(t.confirmed),
                   (unsigned long long)t.nacked);
    }
  }
  if (o.consumers > 0) {
    std::fprintf(f, "  received:  %12llu msgs, %10.0f msg/s\n", (unsigned long long)t.received,
                 per_s(t.received));
    print_latency(f, "latency µs:", lat);
  }
  if (o.confirm > 0 && o.producers > 0) print_latency(f, "confirm latency µs:", clat);
  std::fflush(f);

  if (o.json) {
    std::string j = "{";
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"producers\":%d,\"consumers\":%d,\"size\":%u,\"queues\":%zu,\"confirm\":%u,"
                  "\"persistent\":%s,\"durable\":%s,\"autoack\":%s,\"prefetch\":%u,"
                  "\"multi_ack\":%u,\"rate\":%.0f,",
                  o.producers, o.consumers, o.size, run.queue_names.size(), o.confirm,
                  o.persistent ? "true" : "false", o.durable ? "true" : "false",
                  o.autoack ? "true" : "false", o.prefetch, o.multi_ack, o.rate);
    j += buf;
    j += "\"queue\":\"" + json_escape(o.queue) + "\",\"exchange\":\"" + json_escape(o.exchange) +
         "\",\"stop_reason\":\"" + json_escape(why) + "\",";
    std::snprintf(buf, sizeof buf,
                  "\"duration_s\":%.3f,\"sent\":%llu,\"confirmed\":%llu,\"nacked\":%llu,"
                  "\"received\":%llu,\"send_rate\":%.1f,\"confirm_rate\":%.1f,"
                  "\"receive_rate\":%.1f,",
                  duration, (unsigned long long)t.sent, (unsigned long long)t.confirmed,
                  (unsigned long long)t.nacked, (unsigned long long)t.received, per_s(t.sent),
                  per_s(t.confirmed), per_s(t.received));
    j += buf;
    j += "\"latency_us\":" + latency_json(lat) + ",";
    j += "\"confirm_latency_us\":" + latency_json(clat) + ",";
    j += std::string("\"ok\":") + (failed ? "false" : "true");
    if (failed) {
      std::string errs;
      for (auto* v : {&run.pstats, &run.cstats})
        for (auto& s : *v)
          if (s->failed.load()) errs += (errs.empty() ? "" : "; ") + s->error;
      j += ",\"error\":\"" + json_escape(errs) + "\"";
    }
    j += "}";
    std::printf("%s\n", j.c_str());
    std::fflush(stdout);
  }
  join_all();
  return failed ? 1 : 0;
}

int main_impl(int argc, char** argv) {
  Run run;
  Options& o = run.opts;
  CLI::App app{"warren-perf: AMQP 0-9-1 load generator (producers/consumers with latency)"};
  app.get_formatter()->column_width(34);
  app.add_option("--uri", o.uri, "broker URI amqp://user:pass@host:port/vhost")->capture_default_str();
  app.add_option("--host", o.host, "broker host (overrides the URI's)");
  app.add_option("--port", o.port, "broker port (overrides the URI's)")->check(CLI::Range(1, 65535));
  app.add_option("-x,--producers", o.producers, "number of producers")
      ->capture_default_str()->check(CLI::Range(0, 10000));
  app.add_option("-y,--consumers", o.consumers, "number of consumers")
      ->capture_default_str()->check(CLI::Range(0, 10000));
  app.add_option("-s,--size", o.size, "message body size in bytes (>= 8: send timestamp)")
      ->capture_default_str()->check(CLI::Range(8u, 512u * 1024 * 1024));
  app.add_option("-r,--rate", o.rate, "publish rate limit per producer, msg/s (0 = unlimited)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("-z,--time", o.time, "run duration in seconds (0 = until counts reached or Ctrl-C)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("-C,--pmessages", o.pmessages, "each producer stops after this many messages");
  app.add_option("-D,--cmessages", o.cmessages, "each consumer stops after this many messages");
  app.add_option("-c,--confirm", o.confirm,
                 "publisher confirms with at most N unconfirmed messages per producer (0 = off)")
      ->capture_default_str();
  app.add_flag("--persistent", o.persistent, "publish with delivery_mode 2");
  app.add_option("-q,--prefetch", o.prefetch, "consumer prefetch (basic.qos), 0 = unlimited")
      ->capture_default_str()->check(CLI::Range(0u, 65535u));
  app.add_option("-A,--multi-ack", o.multi_ack, "ack every N messages (multiple=true)")
      ->capture_default_str();
  app.add_flag("-a,--autoack", o.autoack, "consume with no_ack (automatic acknowledgements)");
  app.add_option("-u,--queue", o.queue, "queue name (prefix with --queues > 1)")->capture_default_str();
  app.add_option("--queues", o.queues, "spread over N queues NAME-0..NAME-(N-1)")
      ->capture_default_str()->check(CLI::Range(1u, 100000u));
  app.add_option("-e,--exchange", o.exchange, "exchange to publish to (default: the default exchange)");
  app.add_option("-t,--exchange-type", o.exchange_type, "type when --exchange must be declared")
      ->capture_default_str();
  app.add_flag("--durable", o.durable, "declare durable queues (and exchange)");
  app.add_flag("--no-purge", o.no_purge, "do not purge the queues before the run");
  app.add_flag("--json", o.json, "print a one-line JSON summary on stdout (other output to stderr)");
  app.add_option("--frame-max", o.frame_max, "frame_max to ask for (0 = accept the server's)")
      ->capture_default_str();
  app.add_option("--heartbeat", o.heartbeat, "heartbeat interval in seconds (0 = off)")
      ->capture_default_str();
  app.add_option("--batch-size", o.batch_bytes, "bytes a producer encodes per socket write")
      ->capture_default_str()->check(CLI::Range(1024u, 64u * 1024 * 1024));
  std::string queue_args, priority;
  app.add_option("--queue-args", queue_args,
                 "queue.declare arguments K=V,... (integer: int/long, true/false: bool, "
                 "else longstr)");
  app.add_option("--priority", priority,
                 "message priority: N (fixed) or random:A-B (uniform per message)");
  app.add_option("--expiration", o.expiration, "per-message TTL in ms (expiration property)");
  CLI11_PARSE(app, argc, argv);

  if (o.frame_max != 0 && o.frame_max < 4096) {
    std::fprintf(stderr, "warren-perf: --frame-max must be 0 or at least 4096\n");
    return 2;
  }
  if (o.producers == 0 && o.consumers == 0) {
    std::fprintf(stderr, "warren-perf: nothing to do with 0 producers and 0 consumers\n");
    return 2;
  }
  std::string err;
  if (!queue_args.empty()) {
    auto args = parse_queue_args(queue_args, &err);
    if (!args) {
      std::fprintf(stderr, "warren-perf: bad --queue-args: %s\n", err.c_str());
      return 2;
    }
    o.queue_args = encode_table_body(*args);
  }
  if (!priority.empty() && !parse_priority(priority, &o.priority_min, &o.priority_max, &err)) {
    std::fprintf(stderr, "warren-perf: bad --priority: %s\n", err.c_str());
    return 2;
  }
  if (!o.expiration.empty()) {
    uint64_t ms = 0;
    auto [ptr, ec] = std::from_chars(o.expiration.data(), o.expiration.data() + o.expiration.size(), ms);
    if (ec != std::errc() || ptr != o.expiration.data() + o.expiration.size() || ms > UINT32_MAX) {
      std::fprintf(stderr, "warren-perf: bad --expiration: expected milliseconds, got '%s'\n",
                   o.expiration.c_str());
      return 2;
    }
  }
  auto uri = parse_amqp_uri(o.uri, &err);
  if (!uri) {
    std::fprintf(stderr, "warren-perf: bad --uri: %s\n", err.c_str());
    return 2;
  }
  run.params.host = o.host.empty() ? uri->host : o.host;
  run.params.port = o.port != 0 ? static_cast<uint16_t>(o.port) : uri->port;
  run.params.user = uri->user;
  run.params.password = uri->password;
  run.params.vhost = uri->vhost;
  run.params.tls = uri->tls;
  run.params.frame_max = o.frame_max;
  run.params.heartbeat = o.heartbeat;
  if (o.queues == 1) {
    run.queue_names.push_back(o.queue);
  } else {
    for (uint32_t i = 0; i < o.queues; ++i) run.queue_names.push_back(o.queue + "-" + std::to_string(i));
  }
  run.info = o.json ? stderr : stdout;
  setvbuf(stdout, nullptr, _IOLBF, 0);

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);

  std::fprintf(run.info,
               "warren-perf: %s:%u vhost '%s', %d producer(s), %d consumer(s), %u-byte messages, "
               "%zu queue(s)%s%s%s\n",
               run.params.host.c_str(), run.params.port, run.params.vhost.c_str(), o.producers,
               o.consumers, o.size, run.queue_names.size(), o.confirm ? ", confirms" : "",
               o.persistent ? ", persistent" : "", o.autoack ? ", autoack" : "");
  if (!queue_args.empty() || !priority.empty() || !o.expiration.empty()) {
    std::fprintf(run.info, "  queue arguments: %s; priority: %s; expiration: %s\n",
                 queue_args.empty() ? "none" : queue_args.c_str(),
                 priority.empty() ? "none" : priority.c_str(),
                 o.expiration.empty() ? "none" : (o.expiration + " ms").c_str());
  }
  if (!declare_topology(run)) return 1;
  return run_test(run);
}

}  // namespace
}  // namespace warren::perf

int main(int argc, char** argv) { return warren::perf::main_impl(argc, argv); }
