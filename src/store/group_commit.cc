#include "store/group_commit.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/segment_reader.h"

namespace warren::store {
namespace {

// Recycled batches kept beyond this are freed: more only piles up during a disk stall.
constexpr size_t kMaxFreeBatches = 64;

}  // namespace

std::string GroupCommitter::segment_path(const std::string& dir, uint32_t id) {
  return fmt::format("{}/{:010}.seg", dir, id);
}

GroupCommitter::GroupCommitter(SegmentIo& io, std::string dir, CompletionFn on_complete)
    : io_(io), dir_(std::move(dir)), on_complete_(std::move(on_complete)) {}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::start() {
  thread_ = std::thread([this] { run(); });
}

void GroupCommitter::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<Batch> GroupCommitter::submit(std::unique_ptr<Batch> batch) {
  unsynced_bytes_.fetch_add(batch->bytes.size(), std::memory_order_relaxed);
  std::unique_ptr<Batch> fresh;
  bool wake;
  {
    std::lock_guard lk(mu_);
    queued_.push_back(std::move(batch));
    if (!free_.empty()) {
      fresh = std::move(free_.back());
      free_.pop_back();
    }
    wake = sleeping_;
  }
  // Only a sleeping sync thread needs the futex wake-up; a busy one looks at queued_ when its
  // current round ends. This keeps flush() at one uncontended lock on a loaded broker.
  if (wake) cv_.notify_one();
  if (!fresh) fresh = std::make_unique<Batch>();
  return fresh;
}

std::optional<std::error_code> GroupCommitter::read_in_flight(const Position& pos,
                                                              std::string* body) const {
  std::lock_guard lk(mu_);
  for (const auto* list : {&in_flight_, &queued_}) {
    for (const auto& b : *list) {
      if (auto bytes = b->find(pos)) return extract_message(*bytes, body);
    }
  }
  return std::nullopt;
}

std::error_code GroupCommitter::last_error() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

void GroupCommitter::run() {
  while (true) {
    {
      std::unique_lock lk(mu_);
      while (queued_.empty() && !stopping_) {
        sleeping_ = true;
        cv_.wait(lk);
        sleeping_ = false;
      }
      if (queued_.empty()) return;  // stopping, and everything submitted has been reported
      in_flight_.swap(queued_);
    }
    // in_flight_ is read here without the lock: only this thread modifies it (under the lock),
    // and the owner only reads it.
    Completion c = commit(in_flight_);
    uint64_t bytes = 0;
    {
      std::lock_guard lk(mu_);
      for (auto& b : in_flight_) {
        bytes += b->bytes.size();
        if (free_.size() < kMaxFreeBatches) {
          b->clear();
          free_.push_back(std::move(b));
        }
      }
      in_flight_.clear();
      if (c.error) last_error_ = c.error;
    }
    unsynced_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    rounds_.fetch_add(1, std::memory_order_relaxed);
    if (c.first_seq != 0 && on_complete_) on_complete_(c);
  }
}

Completion GroupCommitter::commit(const std::vector<std::unique_ptr<Batch>>& round) {
  Completion c;
  for (const auto& b : round) {
    if (b->first_seq == 0) continue;
    if (c.first_seq == 0) c.first_seq = b->first_seq;
    c.last_seq = b->last_seq;
  }
  std::vector<uint32_t> touched;
  bool created = false;
  std::error_code ec = write_round(round, &touched, &created);
  for (size_t i = 0; !ec && i < touched.size(); ++i) ec = io_.fdatasync(files_[touched[i]].get());
  // A new file's directory entry is durable only after the directory itself is synced.
  if (!ec && created) ec = io_.fsync_dir(dir_);

  if (ec) {
    uint32_t newest = 0;
    for (const auto& b : round)
      for (const Extent& e : b->extents) {
        newest = std::max(newest, e.segment);
        files_.erase(e.segment);
      }
    if (newest + 1 > poisoned_floor_.load(std::memory_order_relaxed))
      poisoned_floor_.store(newest + 1, std::memory_order_relaxed);
    spdlog::error(
        "message store: journal write failed for seqs {}..{}: {}; continuing in a new "
        "segment (>= {})",
        c.first_seq, c.last_seq, ec.message(), newest + 1);
    c.error = ec;
  } else if (!touched.empty()) {
    // The owner appends only to the newest segment; older ones are sealed, close them.
    uint32_t newest = *std::max_element(touched.begin(), touched.end());
    boost::unordered::erase_if(files_, [&](const auto& kv) { return kv.first < newest; });
  }
  delete_segments(round);
  return c;
}

std::error_code GroupCommitter::write_round(const std::vector<std::unique_ptr<Batch>>& round,
                                            std::vector<uint32_t>* touched, bool* created) {
  uint32_t floor = poisoned_floor_.load(std::memory_order_relaxed);
  for (const auto& b : round)
    for (const Extent& e : b->extents)
      if (e.segment < floor) return StoreErrc::kSegmentFailed;  // write nothing of this round

  int fd = -1;
  uint32_t seg = 0;
  uint64_t run_start = 0, run_end = 0;
  iov_.clear();
  auto write_run = [&]() -> std::error_code {
    if (iov_.empty()) return {};
    std::error_code ec = io_.pwritev(fd, iov_.data(), static_cast<int>(iov_.size()), run_start);
    iov_.clear();
    return ec;
  };
  for (const auto& b : round) {
    for (const Extent& e : b->extents) {
      bool extends =
          !iov_.empty() && e.segment == seg && e.file_offset == run_end && iov_.size() < IOV_MAX;
      if (!extends) {
        if (auto ec = write_run()) return ec;
        std::error_code ec;
        fd = file_for(e, created, &ec);
        if (ec) return ec;
        seg = e.segment;
        run_start = run_end = e.file_offset;
        if (std::find(touched->begin(), touched->end(), seg) == touched->end())
          touched->push_back(seg);
      }
      iov_.push_back(iovec{const_cast<char*>(b->bytes.data()) + e.buf_offset, e.length});
      run_end += e.length;
    }
  }
  return write_run();
}

int GroupCommitter::file_for(const Extent& e, bool* created, std::error_code* ec) {
  if (auto it = files_.find(e.segment); it != files_.end()) return it->second.get();
  // Only an extent that starts with the header may create the file; any other means the file was
  // closed after a failure (poisoned) -- never silently start a file in the middle.
  if (e.file_offset != 0) {
    *ec = StoreErrc::kSegmentFailed;
    return -1;
  }
  UniqueFd fd;
  // O_EXCL: segment ids only grow, so an existing file is a leftover we must not overwrite.
  if ((*ec = io_.open(segment_path(dir_, e.segment), O_RDWR | O_CREAT | O_EXCL, &fd))) return -1;
  *created = true;
  int raw = fd.get();
  files_.emplace(e.segment, std::move(fd));
  return raw;
}

void GroupCommitter::delete_segments(const std::vector<std::unique_ptr<Batch>>& round) {
  bool any = false;
  for (const auto& b : round) {
    for (uint32_t id : b->deletes) {
      files_.erase(id);
      std::error_code ec = io_.unlink(segment_path(dir_, id));
      // ENOENT: a segment whose first write failed was never created.
      if (ec && ec != std::errc::no_such_file_or_directory) {
        spdlog::warn("message store: cannot delete segment {}: {}", id, ec.message());
      } else if (!ec) {
        any = true;
      }
    }
  }
  // Makes these unlinks durable before a later round deletes a segment holding acks for them
  // (segment_set.h). A lost unlink would bring acked messages back as redeliveries, which AMQP
  // allows, and the disk space with them.
  if (any) {
    if (auto ec = io_.fsync_dir(dir_))
      spdlog::warn("message store: fsync of {} failed: {}", dir_, ec.message());
  }
}

}  // namespace warren::store
