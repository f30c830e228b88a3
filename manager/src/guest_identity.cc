#include "guest_identity.h"

#include <guestfs.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "process.h"

namespace clonekit::manager {

namespace {

constexpr int64_t kMaxConfigBytes = 1 << 20;  // a configuration file, not data

// Frees libguestfs's NULL-terminated string lists.
void FreeList(char** list) {
  if (!list) return;
  for (char** p = list; *p; p++) free(*p);
  free(list);
}
std::vector<std::string> TakeList(char** list) {
  std::vector<std::string> out;
  if (!list) return out;
  for (char** p = list; *p; p++) out.emplace_back(*p);
  FreeList(list);
  return out;
}
std::string TakeString(char* s) {
  std::string out = s ? s : "";
  free(s);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One appliance with the clone's disks, its Linux root mounted.
class Guest {
 public:
  explicit Guest(const GuestResetRequest& req) : req_(req), g_(guestfs_create()) {
    if (g_) guestfs_set_error_handler(g_, nullptr, nullptr);  // errors go into Status, not stderr
  }
  ~Guest() {
    if (g_) guestfs_close(g_);
  }
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;

  std::string Error() const {
    const char* e = g_ ? guestfs_last_error(g_) : nullptr;
    return e ? e : "libguestfs failed";
  }

  Status Launch() {
    if (!g_) return Status::IOError("libguestfs", "cannot create a handle");
    // The appliance runs qemu itself unless the admin picked a backend:
    // never libvirt's (a transient domain next to the VMs it manages).
    if (!getenv("LIBGUESTFS_BACKEND")) guestfs_set_backend(g_, "direct");
    guestfs_set_network(g_, 0);
    for (const GuestDisk& d : req_.disks) {
      if (guestfs_add_drive_opts(g_, d.path.c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT, d.format.c_str(),
                                 GUESTFS_ADD_DRIVE_OPTS_READONLY, 0, -1) != 0) {
        return Status::IOError("disk " + d.target, "libguestfs cannot add it: " + Error());
      }
    }
    if (guestfs_launch(g_) != 0) return Status::IOError("libguestfs", "the appliance did not start: " + Error());
    return Status::OK();
  }

  // The Linux root to work on, or why there is none (empty root).
  std::string FindLinux(std::string* why) {
    std::vector<std::string> roots = TakeList(guestfs_inspect_os(g_));
    if (roots.empty()) {
      *why = "libguestfs found no operating system on the clone's disks";
      return "";
    }
    for (const std::string& root : roots) {
      if (TakeString(guestfs_inspect_get_type(g_, root.c_str())) == "linux") return root;
    }
    *why = "the guest is " + TakeString(guestfs_inspect_get_type(g_, roots[0].c_str())) +
           " (only Linux guests are generalized inside)";
    return "";
  }

  Status Mount(const std::string& root) {
    std::vector<std::string> kv = TakeList(guestfs_inspect_get_mountpoints(g_, root.c_str()));
    for (size_t i = 0; i + 1 < kv.size(); i += 2) mounts_.emplace_back(kv[i], kv[i + 1]);
    // Parents first: "/" before "/var".
    std::sort(mounts_.begin(), mounts_.end(),
              [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
    for (const auto& [mp, dev] : mounts_) {
      if (guestfs_mount(g_, dev.c_str(), mp.c_str()) != 0) {
        return Status::IOError("guest file system " + mp + " (" + dev + ")", "cannot be mounted: " + Error());
      }
    }
    distro_ = TakeString(guestfs_inspect_get_distro(g_, root.c_str()));
    old_hostname_ = TakeString(guestfs_inspect_get_hostname(g_, root.c_str()));
    return Status::OK();
  }

  // Writes everything back; the images are complete only after this.
  Status Finish() {
    if (guestfs_umount_all(g_) != 0 || guestfs_shutdown(g_) != 0) {
      return Status::IOError("libguestfs", "the changes were not written: " + Error());
    }
    return Status::OK();
  }

  // The clone's disk holding guest path `path` ("vda", "vda+vdb" for a
  // volume group on two).
  std::string DiskOf(const std::string& path) {
    std::string best_mp, dev;
    for (const auto& [mp, d] : mounts_) {
      const bool under = path == mp || mp == "/" || path.rfind(mp + "/", 0) == 0;
      if (under && mp.size() >= best_mp.size()) best_mp = mp, dev = d;
    }
    std::vector<std::string> devices;
    if (guestfs_is_lv(g_, dev.c_str()) == 1) {
      // /dev/VG/LV: the physical volumes of VG.
      std::string lv = TakeString(guestfs_lvm_canonical_lv_name(g_, dev.c_str()));
      std::string vg = lv.size() > 5 ? lv.substr(5, lv.find('/', 5) - 5) : "";
      std::vector<std::string> uuids = TakeList(guestfs_vgpvuuids(g_, vg.c_str()));
      for (const std::string& pv : TakeList(guestfs_pvs(g_))) {
        if (std::find(uuids.begin(), uuids.end(), TakeString(guestfs_pvuuid(g_, pv.c_str()))) != uuids.end()) {
          devices.push_back(pv);
        }
      }
    } else {
      devices.push_back(dev);
    }
    std::string out;
    for (std::string d : devices) {
      if (char* whole = guestfs_part_to_dev(g_, d.c_str())) d = TakeString(whole);
      int index = guestfs_device_index(g_, d.c_str());
      std::string target = index >= 0 && size_t(index) < req_.disks.size() ? req_.disks[index].target : d;
      if (out.find(target) == std::string::npos) out += (out.empty() ? "" : "+") + target;
    }
    return out;
  }

  bool IsFile(const std::string& p) { return guestfs_is_file(g_, p.c_str()) == 1; }  // not a link
  bool IsDir(const std::string& p) { return guestfs_is_dir(g_, p.c_str()) == 1; }
  bool IsLink(const std::string& p) { return guestfs_is_symlink(g_, p.c_str()) == 1; }
  std::string ReadLink(const std::string& p) { return TakeString(guestfs_readlink(g_, p.c_str())); }
  std::vector<std::string> List(const std::string& dir) {
    if (!IsDir(dir) || IsLink(dir)) return {};
    std::vector<std::string> names = TakeList(guestfs_ls(g_, dir.c_str()));
    std::sort(names.begin(), names.end());
    return names;
  }

  // A regular file's text (at most kMaxConfigBytes, else an error).
  Result<std::string> Read(const std::string& p) {
    int64_t size = guestfs_filesize(g_, p.c_str());
    if (size < 0) return Status::IOError("", Error());
    if (size > kMaxConfigBytes) return Status::InvalidArgument("larger than 1 MiB: not a configuration file");
    size_t n = 0;
    char* data = guestfs_read_file(g_, p.c_str(), &n);
    if (!data) return Status::IOError("", Error());
    std::string out(data, n);
    free(data);
    return out;
  }
  Status Write(const std::string& p, const std::string& text) {
    if (guestfs_write(g_, p.c_str(), text.data(), text.size()) != 0) return Status::IOError("", Error());
    return Status::OK();
  }
  Status Truncate(const std::string& p) {
    return guestfs_truncate(g_, p.c_str()) == 0 ? Status::OK() : Status::IOError("", Error());
  }
  Status Remove(const std::string& p) {
    return guestfs_rm(g_, p.c_str()) == 0 ? Status::OK() : Status::IOError("", Error());
  }
  Status RemoveTree(const std::string& p) {
    return guestfs_rm_rf(g_, p.c_str()) == 0 ? Status::OK() : Status::IOError("", Error());
  }
  Status Own(const std::string& p, int mode) {
    if (guestfs_chown(g_, 0, 0, p.c_str()) != 0 || guestfs_chmod(g_, mode, p.c_str()) != 0) {
      return Status::IOError("", Error());
    }
    return Status::OK();
  }

  const std::string& distro() const { return distro_; }
  const std::string& old_hostname() const { return old_hostname_; }

 private:
  const GuestResetRequest& req_;
  guestfs_h* g_;
  std::vector<std::pair<std::string, std::string>> mounts_;  // mountpoint, device
  std::string distro_, old_hostname_;
};

// Applies one item, adding its report lines.
class ItemRun {
 public:
  ItemRun(Guest& guest, const GuestResetRequest& req, GeneralizeItem item, std::vector<IdentityChange>* report)
      : g_(guest), req_(req), item_(item), report_(report) {}

  void Note(const std::string& path, const std::string& change) {
    report_->push_back({item_, path.empty() ? "" : g_.DiskOf(path), path, change});
  }
  // The item's error: one line naming it and the file.
  Status Fail(const std::string& path, const Status& s) {
    std::string where = path.empty() ? "" : " " + path + (g_.DiskOf(path).empty() ? "" : " on disk " + g_.DiskOf(path));
    return Status::IOError(std::string("generalize ") + GeneralizeItemName(item_) + ":" + where, s.message());
  }

  Status MachineId() {
    const std::string etc = "/etc/machine-id", dbus = "/var/lib/dbus/machine-id";
    if (g_.IsFile(etc)) {
      Result<std::string> id = g_.Read(etc);
      if (!id.ok()) return Fail(etc, id.status());
      if (id->empty()) {
        Note(etc, "already empty");
      } else {
        if (Status s = g_.Truncate(etc); !s.ok()) return Fail(etc, s);
        Note(etc, "emptied (systemd makes a new ID at first boot)");
      }
    } else {
      Note(etc, g_.IsLink(etc) ? "left as is: a symbolic link" : "not found");
    }
    if (g_.IsFile(dbus)) {
      if (Status s = g_.Remove(dbus); !s.ok()) return Fail(dbus, s);
      Note(dbus, "removed (D-Bus then reads /etc/machine-id)");
    } else if (g_.IsLink(dbus)) {
      Note(dbus, "left as is: a link to " + g_.ReadLink(dbus));
    }
    return Status::OK();
  }

  // Fedora/RHEL (sshd-keygen@.service), SUSE (sshd-gen-keys-start), Arch
  // (sshdgenkeys.service) and Alpine (its sshd service runs ssh-keygen -A)
  // make missing host keys when sshd starts. Debian and Ubuntu do not
  // (sshd fails without them; only cloud-init would make them), so there,
  // and wherever clonekit cannot tell, new keys are made here, offline.
  bool KeysMadeAtBoot() const {
    static const char* const kDistros[] = {"fedora",   "rhel",   "centos",    "rocky",     "almalinux", "redhat-based",
                                           "oraclelinux", "opensuse", "sles", "suse-based", "archlinux", "alpine"};
    return std::find(std::begin(kDistros), std::end(kDistros), g_.distro()) != std::end(kDistros);
  }

  Status SshHostKeys() {
    const std::string dir = "/etc/ssh";
    std::vector<std::string> keys;
    for (const std::string& name : g_.List(dir)) {
      if (name.rfind("ssh_host_", 0) == 0 && g_.IsFile(dir + "/" + name)) keys.push_back(name);
    }
    if (keys.empty()) {
      Note(dir, "no host keys found");
      return Status::OK();
    }
    const bool at_boot = KeysMadeAtBoot();
    for (const std::string& name : keys) {
      const std::string path = dir + "/" + name;
      // ssh_host_TYPE_key: a private key, made anew offline where the
      // distribution does not at boot (its .pub is written with it).
      const bool is_private = name.size() > 13 && name.compare(name.size() - 4, 4, "_key") == 0;
      const std::string type = is_private ? name.substr(9, name.size() - 13) : "";
      const bool known = type == "rsa" || type == "ecdsa" || type == "ed25519" || type == "dsa";
      if (!at_boot && known) {
        Result<std::pair<std::string, std::string>> key = MakeKey(type);
        if (!key.ok()) return Fail(path, key.status());
        if (Status s = g_.Write(path, key->first); !s.ok()) return Fail(path, s);
        if (Status s = g_.Own(path, 0600); !s.ok()) return Fail(path, s);
        // A link planted at the public key's name goes, not what it names.
        if (g_.IsLink(path + ".pub")) {
          if (Status s = g_.Remove(path + ".pub"); !s.ok()) return Fail(path + ".pub", s);
        }
        if (Status s = g_.Write(path + ".pub", key->second); !s.ok()) return Fail(path + ".pub", s);
        if (Status s = g_.Own(path + ".pub", 0644); !s.ok()) return Fail(path + ".pub", s);
        Note(path, "replaced with a new " + type + " key, made offline (" +
                       (g_.distro().empty() ? std::string("this distribution") : g_.distro()) +
                       " does not make missing keys at boot)");
        Note(path + ".pub", "replaced with the new key's public half");
        continue;
      }
      if (!at_boot && name.size() > 4 && name.compare(name.size() - 4, 4, ".pub") == 0 &&
          std::find(keys.begin(), keys.end(), name.substr(0, name.size() - 4)) != keys.end()) {
        continue;  // written with its private key above
      }
      if (Status s = g_.Remove(path); !s.ok()) return Fail(path, s);
      Note(path, at_boot ? "removed (" + g_.distro() + " makes new host keys when sshd first starts)"
                         : "removed (not a key type clonekit makes)");
    }
    return Status::OK();
  }

  Status Hostname() {
    const std::string name = req_.hostname, hostname = "/etc/hostname", hosts = "/etc/hosts";
    if (g_.IsLink(hostname)) {
      Note(hostname, "left as is: a symbolic link");
    } else {
      std::string old;
      if (g_.IsFile(hostname)) {
        Result<std::string> text = g_.Read(hostname);
        if (!text.ok()) return Fail(hostname, text.status());
        old = *text;
        while (!old.empty() && std::isspace(static_cast<unsigned char>(old.back()))) old.pop_back();
      }
      if (Status s = g_.Write(hostname, name + "\n"); !s.ok()) return Fail(hostname, s);
      Note(hostname, old.empty() ? "set to '" + name + "'" : "'" + old + "' -> '" + name + "'");
    }
    // /etc/hosts lines naming the old host name (as a whole word after the
    // address) name the new one.
    const std::string old = g_.old_hostname();
    if (old.empty() || old == "unknown" || old == name || !g_.IsFile(hosts)) return Status::OK();
    Result<std::string> text = g_.Read(hosts);
    if (!text.ok()) return Fail(hosts, text.status());
    std::istringstream in(*text);
    std::string line, out;
    int changed = 0;
    const std::string old_short = old.substr(0, old.find('.'));
    while (std::getline(in, line)) {
      if (line.find('#') != 0) {
        std::string rebuilt;
        size_t i = 0;
        bool first = true, hit = false;
        while (i < line.size()) {
          size_t j = i;
          while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) j++;
          std::string word = line.substr(i, j - i);
          // "old", "old.example.org": the first label is the host's name.
          if (!first && (word == old || word == old_short || word.rfind(old_short + ".", 0) == 0)) {
            word = word == old ? name : name + word.substr(old_short.size());
            hit = true;
          }
          if (!word.empty()) first = false;
          rebuilt += word;
          size_t k = j;
          while (k < line.size() && std::isspace(static_cast<unsigned char>(line[k]))) k++;
          rebuilt += line.substr(j, k - j);
          i = k;
        }
        if (hit) changed++, line = rebuilt;
      }
      out += line + "\n";
    }
    if (changed == 0) return Status::OK();
    if (Status s = g_.Write(hosts, out); !s.ok()) return Fail(hosts, s);
    Note(hosts, "'" + old + "' -> '" + name + "' on " + std::to_string(changed) + (changed == 1 ? " line" : " lines"));
    return Status::OK();
  }

  // As `cloud-init clean` does: everything in /var/lib/cloud but the seed.
  Status CloudInit() {
    const std::string dir = "/var/lib/cloud";
    if (!g_.IsDir(dir) || g_.IsLink(dir)) {
      Note(dir, "not found: cloud-init keeps no state in this guest");
      return Status::OK();
    }
    int removed = 0;
    for (const std::string& name : g_.List(dir)) {
      if (name == "seed") continue;
      const std::string path = dir + "/" + name;
      if (Status s = g_.RemoveTree(path); !s.ok()) return Fail(path, s);
      Note(path, "removed (cloud-init runs its first boot again)");
      removed++;
    }
    if (removed == 0) Note(dir, "no instance state (cloud-init has not run)");
    // A NoCloud seed kept in the guest: a new instance-id.
    for (const char* seed : {"nocloud", "nocloud-net"}) {
      const std::string path = dir + "/seed/" + seed + "/meta-data";
      if (!g_.IsFile(path)) continue;
      Result<std::string> text = g_.Read(path);
      if (!text.ok()) return Fail(path, text.status());
      std::istringstream in(*text);
      std::string line, out, old;
      while (std::getline(in, line)) {
        if (line.rfind("instance-id:", 0) == 0) {
          old = line.substr(12);
          line = "instance-id: " + req_.instance_id;
        }
        out += line + "\n";
      }
      if (old.empty()) out = "instance-id: " + req_.instance_id + "\n" + out;
      if (Status s = g_.Write(path, out); !s.ok()) return Fail(path, s);
      Note(path, "instance-id set to " + req_.instance_id);
    }
    return Status::OK();
  }

  // Rewrites each source MAC in `text` (case-insensitive, as a whole
  // token) to the clone's, in the case the file used. Returns how many.
  int RewriteMacs(std::string* text, std::vector<std::string>* what) {
    int n = 0;
    std::string lower = Lower(*text);
    for (const auto& [from, to] : req_.macs) {
      if (from == to) continue;
      size_t pos = 0;
      while ((pos = lower.find(from, pos)) != std::string::npos) {
        const auto boundary = [&](size_t at) {
          return !std::isxdigit(static_cast<unsigned char>(lower[at])) && lower[at] != ':';
        };
        const size_t end = pos + from.size();
        const bool whole = (pos == 0 || boundary(pos - 1)) && (end >= lower.size() || boundary(end));
        if (whole) {
          const std::string found = text->substr(pos, from.size());
          const bool upper = std::any_of(found.begin(), found.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); });
          std::string repl = to;
          if (upper) {
            for (char& c : repl) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          }
          text->replace(pos, from.size(), repl);
          lower.replace(pos, from.size(), to);
          what->push_back(from + " -> " + repl);
          n++;
        }
        pos = end;
      }
    }
    return n;
  }

  Status NetworkBindings() {
    bool any_new = false;
    for (const auto& [from, to] : req_.macs) any_new |= from != to;
    struct Place {
      const char* dir;
      const char* suffix;  // "" = every file
    };
    static const Place kBindings[] = {{"/etc/NetworkManager/system-connections", ""},
                                      {"/etc/udev/rules.d", ".rules"},
                                      {"/etc/sysconfig/network-scripts", ""},
                                      {"/etc/systemd/network", ""},
                                      {"/etc/netplan", ".yaml"},
                                      {"/etc/network", "interfaces"}};
    if (!any_new) {
      Note("", "no MAC to rewrite: the clone keeps the source's MACs");
    } else {
      for (const Place& place : kBindings) {
        for (const std::string& name : g_.List(place.dir)) {
          const std::string suffix = place.suffix;
          if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
          const std::string path = std::string(place.dir) + "/" + name;
          if (!g_.IsFile(path)) continue;
          Result<std::string> text = g_.Read(path);
          if (!text.ok()) {
            if (text.status().code() == Status::Code::kInvalidArgument) continue;  // too large: not one
            return Fail(path, text.status());
          }
          std::string edited = *text;
          std::vector<std::string> what;
          if (RewriteMacs(&edited, &what) == 0) continue;
          if (Status s = g_.Write(path, edited); !s.ok()) return Fail(path, s);
          std::string list;
          for (const std::string& w : what) list += (list.empty() ? "" : ", ") + w;
          Note(path, "MAC rewritten: " + list);
        }
      }
    }
    // DHCP client leases: the source's addresses.
    static const char* const kLeaseDirs[] = {"/var/lib/dhcp", "/var/lib/dhclient", "/var/lib/NetworkManager",
                                             "/var/lib/systemd/network"};
    for (const char* dir : kLeaseDirs) {
      for (const std::string& name : g_.List(dir)) {
        const std::string path = std::string(dir) + "/" + name;
        if (name.find("lease") == std::string::npos || !g_.IsFile(path)) continue;
        if (Status s = g_.Remove(path); !s.ok()) return Fail(path, s);
        Note(path, "removed (a DHCP lease of the source)");
      }
    }
    return Status::OK();
  }

 private:
  // A new host key of `type`, made by the host's ssh-keygen: {private, public}.
  Result<std::pair<std::string, std::string>> MakeKey(const std::string& type) {
    char dir[] = "/tmp/clonekit-hostkey-XXXXXX";
    if (!mkdtemp(dir)) return Status::FromErrno("/tmp", "cannot make a directory for a new key", errno);
    const std::string key = std::string(dir) + "/key";
    Status made = Run({"ssh-keygen", "-q", "-t", type, "-N", "", "-C", "root@" + req_.hostname, "-f", key});
    std::pair<std::string, std::string> out;
    if (made.ok()) {
      std::ifstream priv(key), pub(key + ".pub");
      std::stringstream a, b;
      a << priv.rdbuf();
      b << pub.rdbuf();
      out = {a.str(), b.str()};
      if (out.first.empty() || out.second.empty()) made = Status::IOError("ssh-keygen", "wrote no key");
    }
    unlink(key.c_str());
    unlink((key + ".pub").c_str());
    rmdir(dir);
    if (!made.ok()) return made;
    return out;
  }

  Guest& g_;
  const GuestResetRequest& req_;
  GeneralizeItem item_;
  std::vector<IdentityChange>* report_;
};

}  // namespace

std::string HostnameFor(const std::string& clone_name) {
  std::string out = Lower(clone_name.substr(0, 63));
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

Result<std::vector<IdentityChange>> ResetGuestIdentity(const GuestResetRequest& req) {
  std::vector<IdentityChange> report;
  std::vector<GeneralizeItem> items;
  for (GeneralizeItem i : req.items.Items()) {
    if (IsGuestItem(i)) items.push_back(i);
  }
  if (items.empty()) return report;
  auto cancelled = [&] { return req.cancel && req.cancel->load(); };
  auto progress = [&](double f) {
    if (req.progress) req.progress(f);
  };
  auto mark = std::chrono::steady_clock::now();
  auto timed = [&](const std::string& phase) {
    const auto now = std::chrono::steady_clock::now();
    if (req.timings) req.timings->push_back({phase, std::chrono::duration<double>(now - mark).count()});
    mark = now;
  };
  Guest guest(req);
  CLONEKIT_RETURN_IF_ERROR(guest.Launch());
  timed("appliance");
  progress(0.5);  // the appliance's start is most of the time
  if (cancelled()) return Status::Cancelled("cancelled");
  std::string why;
  const std::string root = guest.FindLinux(&why);
  if (root.empty()) {
    for (GeneralizeItem i : items) report.push_back({i, "", "", "not done: " + why});
    timed("inspection");
    CLONEKIT_RETURN_IF_ERROR(guest.Finish());
    timed("sync");
    return report;
  }
  CLONEKIT_RETURN_IF_ERROR(guest.Mount(root));
  timed("inspection");
  for (size_t n = 0; n < items.size(); n++) {
    if (cancelled()) return Status::Cancelled("cancelled");
    ItemRun run(guest, req, items[n], &report);
    switch (items[n]) {
      case GeneralizeItem::kMachineId: CLONEKIT_RETURN_IF_ERROR(run.MachineId()); break;
      case GeneralizeItem::kSshHostKeys: CLONEKIT_RETURN_IF_ERROR(run.SshHostKeys()); break;
      case GeneralizeItem::kHostname: CLONEKIT_RETURN_IF_ERROR(run.Hostname()); break;
      case GeneralizeItem::kCloudInit: CLONEKIT_RETURN_IF_ERROR(run.CloudInit()); break;
      case GeneralizeItem::kNetworkBindings: CLONEKIT_RETURN_IF_ERROR(run.NetworkBindings()); break;
      default: break;
    }
    timed(GeneralizeItemName(items[n]));
    progress(0.5 + 0.45 * double(n + 1) / double(items.size()));
  }
  CLONEKIT_RETURN_IF_ERROR(guest.Finish());
  timed("sync");
  progress(1.0);
  return report;
}

}  // namespace clonekit::manager
