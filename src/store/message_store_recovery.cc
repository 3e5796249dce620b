// MessageStore::open's recovery pass. Two sequential passes, both linear in the journal size:
//  1. scan every segment in order, verify every record, cut damaged tails, and replay acks
//     against an index of the messages seen so far (an ack only ever refers to an earlier record);
//  2. re-read just the surviving messages, in journal order, and hand them to the broker.
// Pass 2 re-reads because holding every body of a large journal in RAM is not an option; the
// survivors are usually a small, page-cached fraction of what pass 1 read.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "store/message_store.h"
#include "store/segment_reader.h"

namespace warren::store {
namespace {

// Recovery's index is a few tens of MB touched at random. On 4 KiB pages every probe is a TLB miss
// and, under virtualization, a nested page walk: measured on the dev VM, 1M inserts into the flat
// map took 0.6-1.4 s on 4 KiB pages and 0.12-0.2 s with transparent huge pages. So the big
// allocations of this pass ask for huge pages (MADV_HUGEPAGE works in THP's default "madvise"
// mode) and are unmapped, not cached, when recovery ends.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHuge = size_t{2} << 20;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(size_t n) {
    size_t bytes = n * sizeof(T);
    if (bytes < 2 * kHuge) return std::allocator<T>().allocate(n);
    size_t len = (bytes + kHuge - 1) & ~(kHuge - 1);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();  // like operator new: out of memory is fatal
    ::madvise(p, len, MADV_HUGEPAGE);             // a hint; failure just means 4 KiB pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    size_t bytes = n * sizeof(T);
    if (bytes < 2 * kHuge) return std::allocator<T>().deallocate(p, n);
    ::munmap(p, (bytes + kHuge - 1) & ~(kHuge - 1));
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

struct MsgKey {
  uint64_t queue_id;
  uint64_t msg_id;
  bool operator==(const MsgKey&) const = default;
};
struct MsgKeyHash {
  size_t operator()(const MsgKey& k) const {
    // A multiply-xorshift mix; msg ids are sequential, so the low bits must be spread.
    uint64_t h = k.queue_id * 0x9E3779B97F4A7C15ull ^ k.msg_id;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return static_cast<size_t>(h);
  }
};

// Pass 1 keeps only where each message is; pass 2 re-decodes ids and seq from the record itself.
struct Entry {
  uint32_t segment;
  uint32_t offset;
  uint32_t size : 31;  // records are < 2^30 bytes (kMaxBodySize)
  uint32_t dead : 1;
};
static_assert(sizeof(Entry) == 12);

// Reserving up front avoids re-touching (and, with huge pages, re-zeroing) memory on every
// doubling. The bound is exact enough: every record is at least kMessageOverhead bytes. Reserved
// but unused capacity is never touched, so it costs address space, not RAM; the cap keeps a very
// large journal from asking for absurd amounts of it.
constexpr uint64_t kMaxReserve = 4u << 20;

// Segment ids present on disk, ascending. Other names (e.g. *.corrupt) are ignored.
std::error_code list_segments(const std::string& dir, std::vector<uint32_t>* ids) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() != 14 || name.compare(10, 4, ".seg") != 0) continue;
    uint32_t id = 0;
    auto [p, err] = std::from_chars(name.data(), name.data() + 10, id);
    if (err == std::errc() && p == name.data() + 10) ids->push_back(id);
  }
  std::sort(ids->begin(), ids->end());
  return ec;
}

}  // namespace

std::error_code MessageStore::recover(const RecoverFn& on_message, RecoveryReport* rep,
                                      uint32_t* max_id, uint64_t* next_seq) {
  std::vector<uint32_t> ids;
  if (auto ec = list_segments(msgs_dir_, &ids)) return ec;
  uint64_t total_bytes = 0;
  for (uint32_t id : ids) {
    std::error_code ec;
    total_bytes += std::filesystem::file_size(GroupCommitter::segment_path(msgs_dir_, id), ec);
  }
  uint64_t reserve = std::min(total_bytes / kMessageOverhead, kMaxReserve);

  std::vector<Entry, HugePageAllocator<Entry>> entries;
  // live message -> entries[i]
  boost::unordered_flat_map<MsgKey, uint32_t, MsgKeyHash, std::equal_to<MsgKey>,
                            HugePageAllocator<std::pair<const MsgKey, uint32_t>>>
      index;
  entries.reserve(reserve);
  index.reserve(reserve);
  for (uint32_t id : ids) {
    *max_id = std::max(*max_id, id);
    std::string path = GroupCommitter::segment_path(msgs_dir_, id);
    UniqueFd fd;
    if (auto ec = io_.open(path, O_RDWR, &fd)) return ec;
    SegmentScanner scan(io_, fd.get(), opts_.scan_chunk);
    if (auto ec = scan.open()) return ec;
    ++rep->segments;

    if (!scan.header() || scan.header()->segment_id != id) {
      // Nothing in it can be trusted. An empty file is a crash right after creation (the header
      // was never synced, so nothing in it was confirmed); anything else is kept for inspection.
      SegmentDamage d{id, scan.file_size(), 0, scan.file_size(), true, DecodeStatus::kOk};
      std::error_code ec =
          scan.file_size() == 0 ? io_.unlink(path) : io_.rename(path, path + ".corrupt");
      if (ec) return ec;
      spdlog::warn("message store: segment {} has no valid header ({} bytes); {}", path,
                   scan.file_size(), scan.file_size() == 0 ? "removed" : "renamed to .corrupt");
      rep->bytes_dropped += d.bytes_dropped;
      rep->damaged.push_back(d);
      continue;
    }
    *next_seq = std::max(*next_seq, scan.header()->base_seq);
    segments_.add(id);

    Record r;
    uint32_t offset;
    while (scan.next(&r, &offset)) {
      ++rep->records;
      *next_seq = std::max(*next_seq, r.seq + 1);
      MsgKey key{r.queue_id, r.msg_id};
      if (r.type == RecordType::kMessage) {
        auto idx = static_cast<uint32_t>(entries.size());
        entries.push_back(Entry{id, offset, r.size, 0});
        segments_.on_message(id, r.size);
        auto [it, fresh] = index.try_emplace(key, idx);
        if (!fresh) {
          // A compaction copy: the newer record of a live message supersedes the older one.
          Entry& old = entries[it->second];
          old.dead = 1;
          segments_.on_ack(id, old.segment, old.size);
          it->second = idx;
          ++rep->relocations;
        }
      } else if (auto it = index.find(key); it != index.end()) {
        Entry& e = entries[it->second];
        e.dead = 1;
        segments_.on_ack(id, e.segment, e.size);
        index.erase(it);
        ++rep->acks_applied;
      } else {
        ++rep->orphan_acks;
      }
    }
    if (auto ec = scan.error()) return ec;
    rep->bytes_scanned += scan.file_size();

    if (scan.valid_end() < scan.file_size()) {
      // Group commit reports a seq durable only after everything before it is synced, so the
      // first bad record marks where unconfirmed bytes begin: cut there (as Redpanda does).
      SegmentDamage d{
          id,    scan.file_size(),  scan.valid_end(), scan.file_size() - scan.valid_end(),
          false, scan.stop_reason()};
      spdlog::warn("message store: segment {}: {} at offset {}; dropping {} bytes", path,
                   to_string(d.reason), d.valid_end, d.bytes_dropped);
      if (auto ec = io_.ftruncate(fd.get(), scan.valid_end())) return ec;
      if (auto ec = io_.fdatasync(fd.get())) return ec;
      rep->bytes_dropped += d.bytes_dropped;
      rep->damaged.push_back(d);
    }
    read_fds_.emplace(id, std::move(fd));  // kept: pass 2 and later read()s use it
  }
  index = {};  // free it before pass 2 allocates window buffers

  // Pass 2: deliver survivors in journal order through a sliding read window.
  std::unique_ptr<char[]> buf;
  size_t cap = 0, len = 0;
  uint32_t win_seg = 0;
  uint64_t win_start = 0;
  bool have_window = false;
  for (const Entry& e : entries) {
    if (e.dead) continue;
    uint32_t size = e.size;
    bool inside = have_window && e.segment == win_seg && e.offset >= win_start &&
                  e.offset + uint64_t{size} <= win_start + len;
    if (!inside) {
      size_t want = std::max<size_t>(opts_.scan_chunk, size);
      if (want > cap) {
        buf = std::make_unique_for_overwrite<char[]>(want);
        cap = want;
      }
      int fd = read_fds_.at(e.segment).get();
      if (auto ec = io_.pread(fd, buf.get(), cap, e.offset, &len)) return ec;
      win_seg = e.segment;
      win_start = e.offset;
      have_window = true;
      if (len < size) return StoreErrc::kCorruptRecord;  // the file changed under us
    }
    Record r;
    std::string_view bytes(buf.get() + (e.offset - win_start), size);
    if (decode_record(bytes, &r) != DecodeStatus::kOk) return StoreErrc::kCorruptRecord;
    on_message(
        RecoveredMessage{r.queue_id, r.msg_id, r.seq, Position{e.segment, e.offset, size}, r.body});
    ++rep->messages;
  }
  return {};
}

}  // namespace warren::store
