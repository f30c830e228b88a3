#include "generalize.h"

namespace clonekit::manager {

const char* GeneralizeItemName(GeneralizeItem item) {
  switch (item) {
    case GeneralizeItem::kMachineId: return "machine-id";
    case GeneralizeItem::kSshHostKeys: return "ssh-host-keys";
    case GeneralizeItem::kHostname: return "hostname";
    case GeneralizeItem::kCloudInit: return "cloud-init";
    case GeneralizeItem::kNetworkBindings: return "network-bindings";
    case GeneralizeItem::kMacAddresses: return "mac-addresses";
    case GeneralizeItem::kSmbiosSerial: return "smbios-serial";
    case GeneralizeItem::kGenid: return "genid";
    case GeneralizeItem::kTpm: return "tpm";
  }
  return "?";
}

bool IsGuestItem(GeneralizeItem item) {
  switch (item) {
    case GeneralizeItem::kMachineId:
    case GeneralizeItem::kSshHostKeys:
    case GeneralizeItem::kHostname:
    case GeneralizeItem::kCloudInit:
    case GeneralizeItem::kNetworkBindings: return true;
    default: return false;
  }
}

bool OnByDefault(GeneralizeItem item) { return item != GeneralizeItem::kTpm; }

GeneralizeItems GeneralizeItems::Base() {
  GeneralizeItems s;
  s.Set(GeneralizeItem::kMacAddresses, true);
  s.Set(GeneralizeItem::kSmbiosSerial, true);
  s.Set(GeneralizeItem::kGenid, true);
  return s;
}

GeneralizeItems GeneralizeItems::Defaults() {
  GeneralizeItems s;
  for (GeneralizeItem i : kAllGeneralizeItems) s.Set(i, OnByDefault(i));
  return s;
}

bool GeneralizeItems::AnyGuest() const {
  for (GeneralizeItem i : kAllGeneralizeItems) {
    if (IsGuestItem(i) && Has(i)) return true;
  }
  return false;
}

std::vector<GeneralizeItem> GeneralizeItems::Items() const {
  std::vector<GeneralizeItem> out;
  for (GeneralizeItem i : kAllGeneralizeItems) {
    if (Has(i)) out.push_back(i);
  }
  return out;
}

std::string GeneralizeItems::ToString() const {
  std::string out;
  for (GeneralizeItem i : Items()) out += (out.empty() ? "" : ",") + std::string(GeneralizeItemName(i));
  return out;
}

std::optional<GeneralizeItem> GeneralizeItemOf(const std::string& name) {
  for (GeneralizeItem i : kAllGeneralizeItems) {
    if (name == GeneralizeItemName(i)) return i;
  }
  return std::nullopt;
}

namespace {

bool ItemOf(const std::string& name, GeneralizeItem* item) {
  std::optional<GeneralizeItem> found = GeneralizeItemOf(name);
  if (found) *item = *found;
  return found.has_value();
}

std::string KnownNames() {
  std::string out = "default, none";
  for (GeneralizeItem i : kAllGeneralizeItems) out += std::string(", ") + GeneralizeItemName(i);
  return out;
}

}  // namespace

Result<GeneralizeItems> ParseGeneralize(const std::string& spec) {
  if (spec.size() > 512) return Status::InvalidArgument("generalize: longer than 512 characters");
  GeneralizeItems set = GeneralizeItems::Base();
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string token = spec.substr(start, end - start);
    start = end + 1;
    if (token.empty()) return Status::InvalidArgument("generalize: an empty item in '" + spec + "'");
    if (token == "default") {
      for (GeneralizeItem i : kAllGeneralizeItems) {
        if (OnByDefault(i)) set.Set(i, true);
      }
      continue;
    }
    if (token == "none") {
      set = GeneralizeItems::None();
      continue;
    }
    const bool off = token[0] == '-';
    GeneralizeItem item;
    if (!ItemOf(off ? token.substr(1) : token, &item)) {
      return Status::InvalidArgument("generalize: unknown item '" + token.substr(off ? 1 : 0, 64) + "' (known: " +
                                     KnownNames() + ")");
    }
    set.Set(item, !off);
  }
  return set;
}

GeneralizeItems GeneralizeFromStore(const std::string& canonical) {
  GeneralizeItems set;
  size_t start = 0;
  while (start < canonical.size()) {
    size_t end = canonical.find(',', start);
    if (end == std::string::npos) end = canonical.size();
    GeneralizeItem item;
    if (ItemOf(canonical.substr(start, end - start), &item)) set.Set(item, true);
    start = end + 1;
  }
  return set;
}

}  // namespace clonekit::manager
