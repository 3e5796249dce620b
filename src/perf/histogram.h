// Log-linear latency histogram (about 1.5% relative precision, values up to 2^64 ns) with a
// single writer and any number of readers: the owning worker thread records without locked
// instructions and the reporting thread takes snapshots, so recording never allocates or blocks.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace warren::perf {

class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t(1) << kSubBits;  // sub-buckets per power of two
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  // Bucket of a value: values below kSub have their own bucket, larger ones keep their top
  // kSubBits + 1 significant bits.
  static size_t index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int e = 63 - __builtin_clzll(v);
    return (size_t(e - kSubBits + 1) << kSubBits) | size_t((v >> (e - kSubBits)) & (kSub - 1));
  }
  static uint64_t lower_bound(size_t i) {
    if (i < kSub) return i;
    int e = int(i >> kSubBits) + kSubBits - 1;
    return (kSub + (i & (kSub - 1))) << (e - kSubBits);
  }
  static uint64_t width(size_t i) {
    if (i < kSub) return 1;
    int e = int(i >> kSubBits) + kSubBits - 1;
    return uint64_t(1) << (e - kSubBits);
  }

  // Only the owning thread may call record(): it uses plain loads and stores on the atomics.
  void record(uint64_t v) {
    auto& c = counts_[index(v)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<uint64_t> counts = std::vector<uint64_t>(kBuckets, 0);
    uint64_t total = 0;
    uint64_t max = 0;

    void add(const Snapshot& o) {
      for (size_t i = 0; i < kBuckets; ++i) counts[i] += o.counts[i];
      total += o.total;
      if (o.max > max) max = o.max;
    }
    // this - earlier, for interval statistics (max becomes the highest bucket's upper bound).
    Snapshot minus(const Snapshot& earlier) const {
      Snapshot d;
      for (size_t i = 0; i < kBuckets; ++i) {
        d.counts[i] = counts[i] - earlier.counts[i];
        d.total += d.counts[i];
        if (d.counts[i]) d.max = lower_bound(i) + width(i) - 1;
      }
      if (d.max > max) d.max = max;
      return d;
    }
    // Value at quantile q (0..1): the middle of the bucket holding it, never above the max.
    uint64_t quantile(double q) const {
      if (total == 0) return 0;
      uint64_t rank = static_cast<uint64_t>(q * double(total));
      if (rank < 1) rank = 1;
      if (rank > total) rank = total;
      uint64_t seen = 0;
      for (size_t i = 0; i < kBuckets; ++i) {
        seen += counts[i];
        if (seen >= rank) {
          uint64_t v = lower_bound(i) + width(i) / 2;
          return v > max ? max : v;
        }
      }
      return max;
    }
  };

  Snapshot snapshot() const {
    Snapshot s;
    for (size_t i = 0; i < kBuckets; ++i) {
      s.counts[i] = counts_[i].load(std::memory_order_relaxed);
      s.total += s.counts[i];
    }
    s.max = max_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> max_{0};
};

}  // namespace warren::perf
