// clonekit map: the collapsed view's extents, in qemu-img map's JSON shape.
#include <cstdio>

#include "clonekit/chain_resolver.h"
#include "commands.h"

namespace clonekit::tools {

namespace {

// One row as qemu-img map shows it: compressed data has no offset, and
// neighbours merge when everything but start/length agrees.
struct MapEntry {
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t depth = 0;
  bool present = false;
  bool zero = false;
  bool data = false;
  bool has_offset = false;
  uint64_t offset = 0;
};

MapEntry ToEntry(const Extent& e) {
  MapEntry m;
  m.start = e.start;
  m.length = e.length;
  m.depth = e.depth;
  m.present = e.present();
  m.zero = e.reads_zero();
  m.data = !e.reads_zero();
  m.has_offset = e.host.valid && e.kind != RunKind::kCompressed;
  m.offset = e.host.offset;
  return m;
}

bool Mergeable(const MapEntry& a, const MapEntry& b) {
  if (a.depth != b.depth || a.present != b.present || a.zero != b.zero || a.data != b.data ||
      a.has_offset != b.has_offset) {
    return false;
  }
  return !a.has_offset || a.offset + a.length == b.offset;
}

class MapPrinter {
 public:
  MapPrinter(const Chain& chain, bool json) : chain_(chain), json_(json) {}

  void Add(const Extent& e) {
    MapEntry m = ToEntry(e);
    if (pending_.length > 0 && Mergeable(pending_, m)) {
      pending_.length += m.length;
      return;
    }
    Flush();
    pending_ = m;
  }

  void Finish() {
    Flush();
    if (json_) std::printf(first_ ? "[]\n" : "]\n");
  }

 private:
  void Flush() {
    if (pending_.length == 0) return;
    const MapEntry& m = pending_;
    if (json_) {
      std::printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %u, \"present\": %s, \"zero\": %s, "
                  "\"data\": %s",
                  first_ ? "[" : ",\n", static_cast<unsigned long long>(m.start),
                  static_cast<unsigned long long>(m.length), m.depth, m.present ? "true" : "false",
                  m.zero ? "true" : "false", m.data ? "true" : "false");
      if (m.has_offset) std::printf(", \"offset\": %llu", static_cast<unsigned long long>(m.offset));
      std::printf("}");
    } else {
      if (first_) std::printf("%-18s %-18s %5s  %-12s %-18s %s\n", "Offset", "Length", "Depth", "Kind",
                              "Mapped to", "File");
      const char* kind = m.data ? "data" : (m.present ? "zero" : "unallocated");
      std::string mapped = m.has_offset ? Hex(m.offset) : (m.data ? "(compressed)" : "-");
      std::printf("%-18s %-18s %5u  %-12s %-18s %s\n", Hex(m.start).c_str(), Hex(m.length).c_str(), m.depth,
                  kind, mapped.c_str(), chain_.layer(m.depth).name().c_str());
    }
    first_ = false;
    pending_ = MapEntry();
  }

  const Chain& chain_;
  bool json_;
  bool first_ = true;
  MapEntry pending_;
};

}  // namespace

Runner AddMapCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("map", "show which layer provides each range of the collapsed disk");
  auto args = std::make_shared<ChainArgs>();
  auto output = std::make_shared<std::string>("human");
  args->Register(cmd);
  cmd->add_option("--output", *output, "human or json")->check(CLI::IsMember({"human", "json"}));
  return [=]() {
    Result<std::unique_ptr<Chain>> chain = args->Open();
    if (!chain.ok()) return Fail(chain.status());
    // Resolve and print window by window so memory stays bounded; the
    // printer merges across window edges.
    constexpr uint64_t kWindow = 64ull << 30;
    ChainResolver resolver(**chain);
    MapPrinter printer(**chain, *output == "json");
    Status s = resolver.ResolveAll(kWindow, [&](const ExtentMap& map) {
      for (const Extent& e : map.extents()) printer.Add(e);
      return g_interrupted ? Status::Cancelled("interrupted") : Status::OK();
    });
    if (!s.ok()) {
      std::fflush(stdout);
      return Fail(s);
    }
    printer.Finish();
    return 0;
  };
}

}  // namespace clonekit::tools
