// The management web UI's static assets (www/, built by scripts/build.sh into www/dist), served at
// every path outside /api/ without authentication: the page logs in through the API itself.
#pragma once

#include <filesystem>
#include <string>

#include "http/http_server.h"

namespace warren::http {

class StaticFiles {
 public:
  explicit StaticFiles(std::filesystem::path root) : root_(std::move(root)) {}
  // GET/HEAD of a file under the root ("/" is index.html). 404 for anything missing, a path
  // with "..", or a directory; 405 for other methods.
  void handle(const Request& request, Response& response) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace warren::http
