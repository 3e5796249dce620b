#include "http/static_files.h"

#include <fstream>
#include <sstream>

namespace warren::http {

namespace bhttp = boost::beast::http;

namespace {

std::string_view content_type(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

void plain(Response& r, bhttp::status status, std::string text) {
  r.result(status);
  r.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  r.body() = std::move(text);
}

}  // namespace

void StaticFiles::handle(const Request& req, Response& r) const {
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head)
    return plain(r, bhttp::status::method_not_allowed, "Method Not Allowed\n");
  std::string_view target = req.target();
  target = target.substr(0, target.find_first_of("?#"));
  std::string rel(target.substr(target.empty() ? 0 : 1));
  if (rel.empty()) rel = "index.html";
  std::filesystem::path p(rel);
  // "//etc/passwd" leaves an absolute path, which root_ / p would follow out of the root.
  if (p.has_root_path()) return plain(r, bhttp::status::not_found, "Not Found\n");
  for (const auto& part : p)
    if (part == ".." || part == ".")
      return plain(r, bhttp::status::not_found, "Not Found\n");
  std::filesystem::path file = root_ / p;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    if (rel == "index.html")
      return plain(r, bhttp::status::not_found,
                   "The management UI is not built: run scripts/build.sh (or pass "
                   "--management-www DIR). The HTTP API is at /api/.\n");
    return plain(r, bhttp::status::not_found, "Not Found\n");
  }
  // Small files (a few hundred KiB at most), read whole on the loop: no stall worth a thread.
  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  r.result(bhttp::status::ok);
  r.set(bhttp::field::content_type, content_type(file));
  r.set(bhttp::field::cache_control, "no-cache");
  r.body() = body.str();
}

}  // namespace warren::http
