#include "store/delivery_marks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <spdlog/spdlog.h>

#include "store/crc32c.h"
#include "store/segment_io.h"

namespace warren::store {

namespace {

constexpr char kMagic[8] = {'W', 'R', 'N', 'D', 'L', 'V', '0', '1'};

std::string marks_path(const std::string& dir) { return dir + "/delivered.marks"; }

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

std::error_code DeliveryMarks::save(const std::string& dir, const std::vector<DeliveryMark>& marks) {
  std::string data(kMagic, sizeof kMagic);
  data.reserve(sizeof kMagic + 8 + marks.size() * 16 + 4);
  put_u64(data, marks.size());
  for (const DeliveryMark& m : marks) {
    put_u64(data, m.queue_id);
    put_u64(data, m.msg_id);
  }
  uint32_t crc = crc32c(0, data);
  data.append(reinterpret_cast<const char*>(&crc), 4);

  SegmentIo& io = SegmentIo::posix();
  std::string tmp = marks_path(dir) + ".tmp";
  UniqueFd fd;
  if (auto ec = io.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, &fd)) return ec;
  iovec iov{data.data(), data.size()};
  if (auto ec = io.pwritev(fd.get(), &iov, 1, 0)) return ec;
  if (auto ec = io.fdatasync(fd.get())) return ec;
  fd.reset();
  if (auto ec = io.rename(tmp, marks_path(dir))) return ec;
  return io.fsync_dir(dir);
}

std::optional<DeliveryMarks> DeliveryMarks::take(const std::string& dir) {
  std::string path = marks_path(dir);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  // Deleted before anything is served: after a crash from here on, the marks would be stale.
  SegmentIo& io = SegmentIo::posix();
  if (io.unlink(path) || io.fsync_dir(dir)) {
    spdlog::warn("cannot remove {}; flagging every recovered message redelivered", path);
    return std::nullopt;
  }
  bool ok = data.size() >= sizeof kMagic + 12 && std::memcmp(data.data(), kMagic, 8) == 0;
  uint64_t count = ok ? get_u64(data.data() + 8) : 0;
  ok = ok && count <= (data.size() - 20) / 16 && data.size() == 20 + count * 16;
  if (ok) {
    uint32_t crc;
    std::memcpy(&crc, data.data() + data.size() - 4, 4);
    ok = crc == crc32c(0, data.data(), data.size() - 4);
  }
  if (!ok) {
    spdlog::warn("{} is damaged; flagging every recovered message redelivered", path);
    return std::nullopt;
  }
  DeliveryMarks marks;
  marks.set_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const char* p = data.data() + 16 + i * 16;
    marks.set_.emplace(get_u64(p), get_u64(p + 8));
  }
  return marks;
}

}  // namespace warren::store
