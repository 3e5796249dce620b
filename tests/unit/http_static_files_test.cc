// The web UI's static files (http/static_files.h): content types, index.html for "/", and no way
// out of the www directory (relative "..", or an absolute path smuggled in as "//etc/...").
#include "http/static_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace warren::http {
namespace {

namespace bhttp = boost::beast::http;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::filesystem::temp_directory_path() /
            ("warren-static-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ / "www" / "sub");
    write(base_ / "www" / "index.html", "<html>ui</html>");
    write(base_ / "www" / "app.js", "console.log(1)");
    write(base_ / "www" / "sub" / "app.css", "body{}");
    write(base_ / "secret.txt", "outside");
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  static void write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  Response get(const std::string& target, bhttp::verb verb = bhttp::verb::get) const {
    StaticFiles files(base_ / "www");
    Request req{verb, target, 11};
    Response res;
    files.handle(req, res);
    return res;
  }

  std::filesystem::path base_;
};

TEST_F(StaticFilesTest, RootIsIndexHtml) {
  Response r = get("/");
  EXPECT_EQ(r.result(), bhttp::status::ok);
  EXPECT_EQ(r.body(), "<html>ui</html>");
  EXPECT_EQ(r[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(get("/?refresh=1000").body(), "<html>ui</html>");
}

TEST_F(StaticFilesTest, ContentTypesByExtension) {
  EXPECT_EQ(get("/app.js")[bhttp::field::content_type], "text/javascript; charset=utf-8");
  Response css = get("/sub/app.css");
  EXPECT_EQ(css.result(), bhttp::status::ok);
  EXPECT_EQ(css[bhttp::field::content_type], "text/css; charset=utf-8");
}

TEST_F(StaticFilesTest, MissingFilesAndDirectoriesAre404) {
  EXPECT_EQ(get("/nope.js").result(), bhttp::status::not_found);
  EXPECT_EQ(get("/sub").result(), bhttp::status::not_found);
  EXPECT_EQ(get("/sub/").result(), bhttp::status::not_found);
}

TEST_F(StaticFilesTest, NothingOutsideTheRoot) {
  EXPECT_EQ(get("/../secret.txt").result(), bhttp::status::not_found);
  EXPECT_EQ(get("/sub/../../secret.txt").result(), bhttp::status::not_found);
  EXPECT_EQ(get("/./app.js").result(), bhttp::status::not_found);
  // Not decoded, so "%2e%2e" names a file called that, which does not exist.
  EXPECT_EQ(get("/%2e%2e/secret.txt").result(), bhttp::status::not_found);
  // An absolute path after the first slash would replace the root in root / path.
  Response abs = get("/" + (base_ / "secret.txt").string());
  EXPECT_EQ(abs.result(), bhttp::status::not_found);
  EXPECT_EQ(abs.body().find("outside"), std::string::npos);
  EXPECT_EQ(get("//etc/passwd").result(), bhttp::status::not_found);
}

TEST_F(StaticFilesTest, OnlyGetAndHead) {
  EXPECT_EQ(get("/app.js", bhttp::verb::head).result(), bhttp::status::ok);
  EXPECT_EQ(get("/app.js", bhttp::verb::post).result(), bhttp::status::method_not_allowed);
}

TEST_F(StaticFilesTest, AMissingBuildSaysSo) {
  StaticFiles files(base_ / "not-built");
  Request req{bhttp::verb::get, "/", 11};
  Response res;
  files.handle(req, res);
  EXPECT_EQ(res.result(), bhttp::status::not_found);
  EXPECT_NE(res.body().find("not built"), std::string::npos);
}

}  // namespace
}  // namespace warren::http
