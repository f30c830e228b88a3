// Builds small qcow2 images in memory for unit tests, and a naive reference
// reader (walk the chain for every cluster) to check the resolver against.
#ifndef CLONEKIT_TESTS_TEST_IMAGES_H_
#define CLONEKIT_TESTS_TEST_IMAGES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "clonekit/file.h"

namespace clonekit::testing {

enum class Fill { kData, kZero, kCompressed };

struct TestCluster {
  uint64_t index;  // guest cluster number
  Fill fill;
  uint8_t byte;  // data pattern
};

struct TestImageSpec {
  uint32_t cluster_bits = 16;
  uint32_t version = 3;
  uint64_t size = 1 << 20;
  std::string backing;
  std::string backing_format = "qcow2";
  bool zstd = false;
  std::vector<TestCluster> clusters;
};

std::vector<uint8_t> BuildQcow2(const TestImageSpec& spec);

// Writes base.qcow2 (data and compressed clusters) and top.qcow2 (data and
// zero clusters over it), `size` bytes each, into `dir`; `seed` picks the
// clusters. Returns the top's path.
std::string WriteTwoLayerChain(const std::string& dir, uint64_t size, unsigned seed);

// Offsets of header fields, for corruption tests.
constexpr size_t kOffVersion = 4, kOffBackingOffset = 8, kOffBackingSize = 16, kOffClusterBits = 20,
                 kOffSize = 24, kOffCrypt = 32, kOffL1Size = 36, kOffL1Offset = 40, kOffRefcountOffset = 48,
                 kOffRefcountClusters = 56, kOffSnapshots = 60, kOffSnapshotsOffset = 64,
                 kOffIncompat = 72, kOffRefcountOrder = 96, kOffHeaderLength = 100;

void Poke32(std::vector<uint8_t>& b, size_t off, uint32_t v);
void Poke64(std::vector<uint8_t>& b, size_t off, uint64_t v);
uint64_t Peek64(const std::vector<uint8_t>& b, size_t off);

// Serves named in-memory files to OpenChain.
class MemoryOpener : public FileOpener {
 public:
  void Add(const std::string& name, std::vector<uint8_t> bytes) { files_[name] = std::move(bytes); }
  Result<std::unique_ptr<ReadableFile>> Open(const std::string& path) override;

 private:
  std::map<std::string, std::vector<uint8_t>> files_;
};

}  // namespace clonekit::testing

#endif  // CLONEKIT_TESTS_TEST_IMAGES_H_
