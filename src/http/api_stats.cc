#include "http/api_stats.h"

#include "broker/delayed_exchange.h"  // wall_now_ms

namespace warren::http {

namespace json = boost::json;

namespace {

uint64_t seconds_param(const Target& t, std::string_view key, uint64_t fallback) {
  auto v = t.param(key);
  if (!v) return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v->c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? n : fallback;
}

// Builds {rate} or {rate, samples, avg_rate, avg} for one value of the samples.
template <class Value>
json::object details(const broker::SampleHistory* h, Value value, uint64_t current,
                     uint64_t age_s, uint64_t incr_s) {
  json::object d;
  d["rate"] = h != nullptr ? h->rate(value) : 0.0;
  if (age_s == 0 || incr_s == 0) return d;
  // One point per incr back to age: the newest sample taken at or before that time (its
  // value then), 0 before the object had samples; the current value for the newest point when
  // nothing was sampled yet.
  uint64_t incr_ms = incr_s * 1000;
  uint64_t newest = broker::wall_now_ms() / incr_ms * incr_ms;
  size_t points = static_cast<size_t>(age_s / incr_s) + 1;
  json::array samples;
  double sum = 0;
  uint64_t first_value = 0, last_value = 0;
  for (size_t k = 0; k < points; ++k) {
    uint64_t at = newest - k * incr_ms;
    uint64_t v = 0;
    bool found = false;
    if (h != nullptr) {
      const auto& s = h->samples();
      for (size_t i = s.size(); i-- > 0;)
        if (s[i].at_ms <= at + incr_ms / 2) {
          v = value(s[i]);
          found = true;
          break;
        }
    }
    if (!found && k == 0) v = current;
    samples.push_back(json::object{{"sample", v}, {"timestamp", at}});
    sum += static_cast<double>(v);
    if (k == 0) last_value = v;
    first_value = v;
  }
  d["samples"] = std::move(samples);
  double span_s = static_cast<double>((points - 1) * incr_s);
  d["avg_rate"] = span_s > 0 ? (static_cast<double>(last_value) - static_cast<double>(first_value)) / span_s : 0.0;
  d["avg"] = sum / static_cast<double>(points);
  return d;
}

}  // namespace

SampleRange SampleRange::of(const Target& t) {
  SampleRange r;
  r.msg_age_s = seconds_param(t, "msg_rates_age", 0);
  r.msg_incr_s = seconds_param(t, "msg_rates_incr", 5);
  r.lengths_age_s = seconds_param(t, "lengths_age", 0);
  r.lengths_incr_s = seconds_param(t, "lengths_incr", 5);
  // Bounded: a request cannot make the broker build millions of points.
  if (r.msg_incr_s == 0 || r.msg_age_s / r.msg_incr_s > 1000) r.msg_age_s = 0;
  if (r.lengths_incr_s == 0 || r.lengths_age_s / r.lengths_incr_s > 1000) r.lengths_age_s = 0;
  return r;
}

json::value message_stats_json(const broker::ObjectStats& s, broker::StatsKind kind,
                               const SampleRange& range) {
  const broker::SampleHistory* h = s.history();
  if (h == nullptr && !s.counts.any()) return nullptr;
  json::object o;
  for (const broker::StatsField& f : broker::stats_fields(kind)) {
    uint64_t current = f.value(s.counts);
    o[f.name] = current;
    auto value = [&f](const broker::StatsSample& x) { return f.value(x.counts); };
    o[std::string(f.name) + "_details"] =
        details(h, value, current, range.msg_age_s, range.msg_incr_s);
  }
  return o;
}

void add_lengths(json::object& o, const broker::ObjectStats& s, uint64_t ready, uint64_t unacked,
                 const SampleRange& range) {
  const broker::SampleHistory* h = s.history();
  auto put = [&](const char* name, uint64_t current, auto value) {
    o[name] = current;
    o[std::string(name) + "_details"] =
        details(h, value, current, range.lengths_age_s, range.lengths_incr_s);
  };
  put("messages", ready + unacked,
      [](const broker::StatsSample& x) { return x.ready + x.unacked; });
  put("messages_ready", ready, [](const broker::StatsSample& x) { return x.ready; });
  put("messages_unacknowledged", unacked,
      [](const broker::StatsSample& x) { return x.unacked; });
}

}  // namespace warren::http
