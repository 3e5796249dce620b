#include "store/message_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "store/segment_reader.h"

namespace warren::store {

std::string RecoveryReport::summary() const {
  std::string s = fmt::format(
      "{} segments, {} records, {} live messages, {} acks applied ({} orphan), {:.1f} MB in "
      "{:.3f} s, {} segments deleted, next seq {}",
      segments, records, messages, acks_applied, orphan_acks, bytes_scanned / 1e6, seconds,
      segments_deleted, next_seq);
  if (relocations > 0) s += fmt::format(", {} compaction copies", relocations);
  if (bytes_dropped > 0) s += fmt::format("; DROPPED {} bytes of damaged tail", bytes_dropped);
  return s;
}

MessageStore::MessageStore(MessageStoreOptions options, CompletionFn on_complete)
    : opts_(std::move(options)),
      io_(opts_.io ? *opts_.io : SegmentIo::posix()),
      on_complete_(std::move(on_complete)),
      msgs_dir_(opts_.dir + "/msgs") {
  opts_.segment_size = std::clamp<uint32_t>(opts_.segment_size, 4096, uint32_t{1} << 30);
}

MessageStore::~MessageStore() { close(); }

std::error_code MessageStore::open(const RecoverFn& on_message, RecoveryReport* report) {
  // One open per object, even after a failed one: the accounting is not reset by close() or by a
  // recovery that stopped halfway. Make a new MessageStore instead.
  if (opened_) return std::make_error_code(std::errc::operation_not_permitted);
  opened_ = true;
  auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  // A new journal directory must itself be durable before anything in it is reported durable.
  if (std::filesystem::create_directories(msgs_dir_, ec)) {
    if ((ec = io_.fsync_dir(opts_.dir))) return ec;
    // In case dir was created just now too (the broker normally creates and locks it first).
    auto self = std::filesystem::absolute(opts_.dir, ec).lexically_normal();
    if (!self.has_filename()) self = self.parent_path();  // "a/b/" names b, not a/b/""
    auto parent = self.parent_path();
    if (!ec && (ec = io_.fsync_dir(parent.string())))
      spdlog::warn("message store: cannot fsync {}: {}", parent.string(), ec.message());
    ec.clear();
  }
  if (ec) return ec;

  RecoveryReport rep;
  uint32_t max_id = 0;
  uint64_t next_seq = 1;
  if ((ec = recover(on_message, &rep, &max_id, &next_seq))) return ec;

  // Always a fresh active segment: the old tail may have been cut, and appending after a cut
  // would mix pre- and post-crash bytes in one file for no gain.
  uint32_t active = max_id + 1;
  writer_.emplace(opts_.segment_size, active, next_seq);
  segments_.set_active(active);
  spare_ = std::make_unique<Batch>();
  committer_ = std::make_unique<GroupCommitter>(io_, msgs_dir_, on_complete_);
  committer_->start();
  open_ = true;
  uint64_t deleted_before = segments_deleted_;
  flush();  // creates the new segment file and deletes segments recovery found fully acked

  rep.segments_deleted = static_cast<uint32_t>(segments_deleted_ - deleted_before);
  rep.next_seq = next_seq;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (rep.bytes_dropped > 0)
    spdlog::warn("message store {}: recovered: {}", msgs_dir_, rep.summary());
  else
    spdlog::info("message store {}: recovered: {}", msgs_dir_, rep.summary());
  if (report) *report = std::move(rep);
  return {};
}

void MessageStore::close() {
  if (!open_) return;
  flush();
  committer_->stop();
  committer_.reset();
  read_fds_.clear();
  open_ = false;
}

void MessageStore::maybe_roll(size_t record_size) {
  uint32_t floor = committer_->poisoned_floor();
  uint32_t active = writer_->active_segment();
  if (active >= floor && !writer_->would_overflow(record_size)) return;
  uint32_t next = std::max(active + 1, floor);
  writer_->roll(next);
  segments_.set_active(next);
}

MessageStore::Appended MessageStore::append_message(uint64_t queue_id, uint64_t msg_id,
                                                    std::span<const std::string_view> parts) {
  Appended out;
  if (!open_) {
    out.error = StoreErrc::kNotOpen;
    return out;
  }
  size_t body = 0;
  for (std::string_view p : parts) body += p.size();
  if (body > kMaxBodySize) {
    out.error = StoreErrc::kTooLarge;
    return out;
  }
  maybe_roll(message_record_size(body));
  auto a = writer_->append_message(queue_id, msg_id, parts, body);
  segments_.on_message(a.pos.segment, a.pos.size);
  out.pos = a.pos;
  out.seq = a.seq;
  return out;
}

std::error_code MessageStore::append_ack(uint64_t queue_id, uint64_t msg_id, const Position& pos) {
  if (!open_) return StoreErrc::kNotOpen;
  maybe_roll(kAckRecordSize);
  auto a = writer_->append_ack(queue_id, msg_id);
  segments_.on_ack(a.pos.segment, pos.segment, pos.size);
  acks_in_flight_.push_back(AckRecord{a.seq, queue_id, msg_id, pos.segment});
  return {};
}

MessageStore::Appended MessageStore::relocate(uint64_t queue_id, uint64_t msg_id,
                                              std::span<const std::string_view> parts) {
  // The new copy counts as live at once; the old one stays live until finish_relocation().
  return append_message(queue_id, msg_id, parts);
}

void MessageStore::finish_relocation(const Position& old_pos, const Position& new_pos) {
  if (!open_) return;
  segments_.on_ack(new_pos.segment, old_pos.segment, old_pos.size);
}

void MessageStore::abandon_relocation(const Position& new_pos) {
  if (!open_) return;
  segments_.on_ack(new_pos.segment, new_pos.segment, new_pos.size);
}

std::vector<uint32_t> MessageStore::sparse_segments() const {
  // RabbitMQ's msg_store compacts files under half full; so do we.
  return segments_.sparse(opts_.segment_size / 2);
}

namespace {
// Fewer synced acks than this are simply popped.
constexpr size_t kDisposeAcksAfter = 65536;
}  // namespace

void MessageStore::on_completion(const Completion& c) {
  if (!c.error && opts_.dispose && acks_in_flight_.size() >= kDisposeAcksAfter)
    dispose_synced_acks(c.last_seq);
  size_t done = 0;
  while (!acks_in_flight_.empty() && acks_in_flight_.front().seq <= c.last_seq) {
    if (c.error) failed_acks_.push_back(acks_in_flight_.front());
    acks_in_flight_.pop_front();
    ++done;
  }
  // A deque keeps its map (8 bytes per 16 acks of its peak) when drained.
  if (done >= kDisposeAcksAfter && acks_in_flight_.empty())
    std::deque<AckRecord>().swap(acks_in_flight_);
}

void MessageStore::dispose_synced_acks(uint64_t last_seq) {
  auto end = std::upper_bound(acks_in_flight_.begin(), acks_in_flight_.end(), last_seq,
                              [](uint64_t seq, const AckRecord& a) { return seq < a.seq; });
  if (static_cast<size_t>(end - acks_in_flight_.begin()) < kDisposeAcksAfter) return;
  // The synced ones go whole; the later ones (usually few, if any) stay.
  std::deque<AckRecord> later(end, acks_in_flight_.end());
  acks_in_flight_.erase(end, acks_in_flight_.end());
  auto synced = std::make_shared<std::deque<AckRecord>>(std::move(acks_in_flight_));
  acks_in_flight_ = std::move(later);
  opts_.dispose([synced](uint64_t budget) -> uint64_t {
    if (synced->empty()) return 0;
    size_t n = std::min<size_t>(synced->size(), budget / sizeof(AckRecord) + 1);
    synced->erase(synced->begin(), synced->begin() + static_cast<std::ptrdiff_t>(n));
    if (synced->empty()) std::deque<AckRecord>().swap(*synced);  // its map too
    return n * sizeof(AckRecord);
  });
}

size_t MessageStore::retry_failed_acks() {
  if (!open_ || failed_acks_.empty()) return 0;
  size_t n = 0;
  for (const AckRecord& f : failed_acks_) {
    if (!segments_.contains(f.msg_segment)) continue;  // the message went with its segment
    maybe_roll(kAckRecordSize);
    auto a = writer_->append_ack(f.queue_id, f.msg_id);
    segments_.add_ack_target(a.pos.segment, f.msg_segment);
    acks_in_flight_.push_back(AckRecord{a.seq, f.queue_id, f.msg_id, f.msg_segment});
    ++n;
  }
  failed_acks_.clear();
  return n;
}

void MessageStore::flush() {
  if (!open_) return;
  if (segments_.has_garbage()) {
    garbage_.clear();
    segments_.collect(&garbage_);
    for (uint32_t id : garbage_) {
      read_fds_.erase(id);  // close before unlink, or the space is not freed (lavinmq#852)
      writer_->add_delete(id);
    }
    segments_deleted_ += garbage_.size();
  }
  if (writer_->batch().empty()) return;
  std::unique_ptr<Batch> full = writer_->swap_batch(std::move(spare_));
  spare_ = committer_->submit(std::move(full));
}

int MessageStore::read_fd(uint32_t segment, std::error_code* ec) {
  if (auto it = read_fds_.find(segment); it != read_fds_.end()) return it->second.get();
  UniqueFd fd;
  if ((*ec = io_.open(GroupCommitter::segment_path(msgs_dir_, segment), O_RDONLY, &fd))) {
    if (*ec == std::errc::no_such_file_or_directory) *ec = StoreErrc::kNoSuchSegment;
    return -1;
  }
  int raw = fd.get();
  read_fds_.emplace(segment, std::move(fd));
  return raw;
}

std::error_code MessageStore::read(const Position& pos, std::string* body) {
  if (!open_) return StoreErrc::kNotOpen;
  if (auto bytes = writer_->batch().find(pos)) return extract_message(*bytes, body);
  // Not in flight means written: the sync thread drops a batch only after its pwrite.
  if (auto r = committer_->read_in_flight(pos, body)) return *r;
  if (!segments_.contains(pos.segment)) return StoreErrc::kNoSuchSegment;
  std::error_code ec;
  int fd = read_fd(pos.segment, &ec);
  if (ec) return ec;
  return read_message_at(io_, fd, pos, body);
}

uint64_t MessageStore::unsynced_bytes() const {
  return committer_ ? committer_->unsynced_bytes() : 0;
}
uint64_t MessageStore::next_seq() const { return writer_ ? writer_->next_seq() : 0; }
uint32_t MessageStore::active_segment() const { return writer_ ? writer_->active_segment() : 0; }
std::error_code MessageStore::last_error() const {
  return committer_ ? committer_->last_error() : std::error_code();
}

}  // namespace warren::store
