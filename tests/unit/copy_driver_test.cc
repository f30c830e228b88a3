// The copy driver, for every kind of destination (raw file, qcow2 file, NBD
// export): the data progress it reports ends at the data bytes the resolver
// counts, the disk progress at the virtual size, both monotonic; and the
// rate limit holds. The NBD export is a real nbdkit memory server.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "clonekit/chain_resolver.h"
#include "clonekit/collapse.h"
#include "test_images.h"

namespace clonekit::testing {
namespace {

constexpr uint64_t kSize = 8 << 20;

// `nbdkit memory` on a Unix socket in `dir`, killed with the object.
class NbdkitMemory {
 public:
  explicit NbdkitMemory(const std::string& dir) : socket_(dir + "/nbd.sock") {
    pid_ = fork();
    if (pid_ == 0) {
      execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-U", socket_.c_str(), "memory", "16M",
             static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 500 && access(socket_.c_str(), F_OK) != 0; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~NbdkitMemory() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool up() const { return access(socket_.c_str(), F_OK) == 0; }
  std::string uri() const { return "nbd+unix:///?socket=" + socket_; }
  std::vector<uint8_t> Read(uint64_t size) const {
    std::vector<uint8_t> bytes(size);
    nbd_handle* h = nbd_create();
    EXPECT_EQ(nbd_connect_uri(h, uri().c_str()), 0) << nbd_get_error();
    EXPECT_EQ(nbd_pread(h, bytes.data(), size, 0, 0), 0) << nbd_get_error();
    nbd_close(h);
    return bytes;
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
};

enum class Kind { kRaw, kQcow2, kNbd };
const char* Name(Kind k) { return k == Kind::kRaw ? "raw" : k == Kind::kQcow2 ? "qcow2" : "nbd"; }

class CopyDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clonekit-driver-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto opener = NewPosixFileOpener({});
    auto chain = OpenChain(WriteTwoLayerChain(dir_, kSize, 5), *opener, {});
    ASSERT_TRUE(chain.ok()) << chain.status().message();
    chain_ = std::move(chain).value();
    ExtentMap map;
    ASSERT_TRUE(ChainResolver(*chain_).Resolve(0, kSize, &map).ok());
    data_bytes_ = map.data_bytes();
    ASSERT_GT(data_bytes_, 4u << 20);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Collapses into a fresh destination of `kind`; *server keeps an NBD one alive.
  Status CollapseTo(Kind kind, CollapseOptions o, CollapseStats* stats, std::unique_ptr<NbdkitMemory>* server) {
    std::string dest = dir_ + "/out." + Name(kind);
    unlink(dest.c_str());
    if (kind == Kind::kQcow2) o.format = OutputFormat::kQcow2;
    if (kind == Kind::kNbd) {
      *server = std::make_unique<NbdkitMemory>(dir_);
      if (!(*server)->up()) return Status::IOError("nbdkit", "did not start (is nbdkit installed?)");
      dest = (*server)->uri();
    }
    return Collapse(*chain_, dest, o, stats);
  }

  std::string dir_;
  std::unique_ptr<Chain> chain_;
  uint64_t data_bytes_ = 0;
};

TEST_F(CopyDriverTest, EveryDestinationReportsDataAndDiskProgress) {
  for (Kind kind : {Kind::kRaw, Kind::kQcow2, Kind::kNbd}) {
    SCOPED_TRACE(Name(kind));
    CollapseOptions o;
    o.window_bytes = 3 << 20;  // several windows, not a multiple of anything
    std::vector<uint64_t> data, disk;
    o.data_progress = [&](uint64_t done) { data.push_back(done); };
    o.progress = [&](uint64_t done, uint64_t total) {
      EXPECT_EQ(total, kSize);
      disk.push_back(done);
    };
    CollapseStats stats;
    std::unique_ptr<NbdkitMemory> server;
    Status s = CollapseTo(kind, o, &stats, &server);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_FALSE(data.empty());
    EXPECT_TRUE(std::is_sorted(data.begin(), data.end()));
    EXPECT_EQ(data.back(), data_bytes_);
    EXPECT_EQ(stats.data_bytes, data_bytes_);
    ASSERT_FALSE(disk.empty());
    EXPECT_TRUE(std::is_sorted(disk.begin(), disk.end()));
    EXPECT_EQ(disk.back(), kSize);
  }
}

TEST_F(CopyDriverTest, TheRateLimitHoldsForEveryDestination) {
  // About 1.5 s of data at the limit; the copy itself takes a few ms.
  const uint64_t rate = data_bytes_ * 2 / 3;
  const double want = static_cast<double>(data_bytes_) / static_cast<double>(rate);
  for (Kind kind : {Kind::kRaw, Kind::kQcow2, Kind::kNbd}) {
    SCOPED_TRACE(Name(kind));
    CollapseOptions o;
    o.max_bytes_per_second = rate;
    std::unique_ptr<NbdkitMemory> server;
    if (kind == Kind::kNbd) {  // started outside the timing
      server = std::make_unique<NbdkitMemory>(dir_);
      ASSERT_TRUE(server->up());
    }
    const auto start = std::chrono::steady_clock::now();
    Status s = kind == Kind::kNbd ? Collapse(*chain_, server->uri(), o) : CollapseTo(kind, o, nullptr, &server);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_GE(took, want * 0.95);
    EXPECT_LE(took, want * 1.05 + 0.3);  // + the last window's own copy and the final sync
  }
}

TEST_F(CopyDriverTest, AnNbdExportGetsTheSameBytesAsAFile) {
  CollapseOptions o;
  std::unique_ptr<NbdkitMemory> server;
  ASSERT_TRUE(CollapseTo(Kind::kRaw, o, nullptr, &server).ok());
  std::ifstream in(dir_ + "/out.raw", std::ios::binary);
  std::vector<uint8_t> file{std::istreambuf_iterator<char>(in), {}};
  ASSERT_TRUE(CollapseTo(Kind::kNbd, o, nullptr, &server).ok());
  EXPECT_EQ(server->Read(kSize), file);
}

}  // namespace
}  // namespace clonekit::testing
