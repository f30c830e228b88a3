// NewConfinedFileOpener (clonekit --confine): regular files inside the
// directories only, opened beneath them with no symlink followed.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "clonekit/file.h"

namespace clonekit {
namespace {

class ConfinedOpenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/clonekit-confine-XXXXXX";  // (mkdtemp's template)
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    pool_ = root_ + "/pool";
    std::filesystem::create_directories(pool_ + "/sub");
    std::ofstream(pool_ + "/sub/disk.img") << "data";
    std::ofstream(root_ + "/outside.img") << "secret";
    std::filesystem::create_symlink(root_ + "/outside.img", pool_ + "/link.img");
    std::filesystem::create_directory_symlink(pool_ + "/sub", pool_ + "/dirlink");
    ASSERT_EQ(mkfifo((pool_ + "/fifo").c_str(), 0600), 0);
    OpenOptions o;
    o.lock = false;
    opener_ = NewConfinedFileOpener({pool_ + "/"}, o);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string Refusal(const std::string& path) {
    Result<std::unique_ptr<ReadableFile>> f = opener_->Open(path);
    return f.ok() ? "" : f.status().message();
  }

  std::string root_, pool_;
  std::unique_ptr<FileOpener> opener_;
};

TEST_F(ConfinedOpenerTest, OpensARegularFileInside) {
  Result<std::unique_ptr<ReadableFile>> f = opener_->Open(pool_ + "/sub/disk.img");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->size(), 4u);
}

TEST_F(ConfinedOpenerTest, RefusesWhatIsOutside) {
  EXPECT_NE(Refusal(root_ + "/outside.img").find("is outside every directory"), std::string::npos);
  EXPECT_NE(Refusal(pool_ + "/../outside.img").find("leaves " + pool_), std::string::npos);
}

TEST_F(ConfinedOpenerTest, FollowsNoSymlinkAnywhereInThePath) {
  EXPECT_NE(Refusal(pool_ + "/link.img").find("symlink"), std::string::npos);
  EXPECT_NE(Refusal(pool_ + "/dirlink/disk.img").find("symlink"), std::string::npos);
}

TEST_F(ConfinedOpenerTest, RefusesAFifoWithoutWaiting) {
  EXPECT_NE(Refusal(pool_ + "/fifo").find("is not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace clonekit
