#include "guest_identity.h"

#include <dirent.h>
#include <guestfs.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>

#include "guest_text.h"
#include "process.h"

namespace clonekit::manager {

namespace {

constexpr int64_t kMaxConfigBytes = 1 << 20;  // a configuration file, not data
constexpr int kMaxLinesPerItem = 100;          // then one line counts the rest

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

  // libguestfs's last error (it may quote the guest's paths): safe text.
  std::string Error() const {
    const char* e = g_ ? guestfs_last_error(g_) : nullptr;
    return e ? SafeText(e, 512) : "libguestfs failed";
  }

  Status Launch() {
    if (!g_) return Status::IOError("libguestfs", "cannot create a handle");
    // The appliance runs qemu itself unless the admin picked a backend:
    // never libvirt's (a transient domain next to the VMs it manages).
    if (!getenv("LIBGUESTFS_BACKEND")) guestfs_set_backend(g_, "direct");
    guestfs_set_network(g_, 0);
    // (libvirt's backend confines its qemu itself: sVirt, its own user.)
    if (TakeString(guestfs_get_backend(g_)) == "direct") CLONEKIT_RETURN_IF_ERROR(Confine());
    for (const GuestDisk& d : req_.disks) {
      if (guestfs_add_drive_opts(g_, d.path.c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT, d.format.c_str(),
                                 GUESTFS_ADD_DRIVE_OPTS_READONLY, 0, -1) != 0) {
        return Status::IOError("disk " + d.target, "libguestfs cannot add it: " + Error());
      }
    }
    if (guestfs_launch(g_) != 0) return Status::IOError("libguestfs", "the appliance did not start: " + Error());
    return Status::OK();
  }

  // The appliance parses the guest's hostile file systems, and with the
  // direct backend its qemu is this root service's child. So qemu opens
  // the disks as root, then runs the appliance as nobody (-runas), under
  // its seccomp sandbox: no new processes, no obsolete or resource-control
  // calls. (Not elevateprivileges=deny: it forbids -runas's own setuid.)
  Status Confine() {
    if (guestfs_config(g_, "-runas", "nobody") != 0 ||
        guestfs_config(g_, "-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny") != 0) {
      return Status::IOError("libguestfs", "cannot confine the appliance: " + Error());
    }
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
        return Status::IOError("guest file system " + SafeText(mp) + " (" + SafeText(dev) + ")",
                               "cannot be mounted: " + Error());
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
    auto known = disk_of_device_.find(dev);
    if (known != disk_of_device_.end()) return known->second;
    return disk_of_device_[dev] = DiskOfDevice(dev);
  }

  // The clone's disks under a mounted device (a partition, a whole disk,
  // or an LV's physical volumes), "+"-joined.
  std::string DiskOfDevice(const std::string& dev) {
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
    std::vector<std::string> targets;
    for (std::string d : devices) {
      if (char* whole = guestfs_part_to_dev(g_, d.c_str())) d = TakeString(whole);
      int index = guestfs_device_index(g_, d.c_str());
      std::string target = index >= 0 && size_t(index) < req_.disks.size() ? req_.disks[index].target : SafeText(d);
      if (std::find(targets.begin(), targets.end(), target) == targets.end()) targets.push_back(target);
    }
    std::string out;
    for (const std::string& t : targets) out += (out.empty() ? "" : "+") + t;
    return out;
  }

  bool IsFile(const std::string& p) { return guestfs_is_file(g_, p.c_str()) == 1; }  // not a link
  bool Exists(const std::string& p) { return guestfs_exists(g_, p.c_str()) == 1 || IsLink(p); }
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
  // Writes `text` as the regular file `p`: whatever else is at that name
  // (a link, a FIFO whose open would block, a device node) is removed
  // first, never written through; a directory there is an error.
  Status Write(const std::string& p, const std::string& text) {
    if (Exists(p) && !IsFile(p)) {
      if (IsDir(p) && !IsLink(p)) return Status::IOError("", "is a directory");
      if (guestfs_rm(g_, p.c_str()) != 0) return Status::IOError("", Error());
    }
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
  std::map<std::string, std::string> disk_of_device_;
  std::string distro_, old_hostname_;
};

// The type clonekit makes a new host key of for "ssh_host_TYPE_key", or
// "" (another file, or DSA: gone from OpenSSH 9.8's ssh-keygen and off by
// default since 7.0, so such a key is removed, not made anew).
std::string KeyTypeMadeOffline(const std::string& name) {
  if (name.size() <= 13 || name.rfind("ssh_host_", 0) != 0 || name.compare(name.size() - 4, 4, "_key") != 0) return "";
  const std::string type = name.substr(9, name.size() - 13);
  return type == "rsa" || type == "ecdsa" || type == "ed25519" ? type : "";
}

// Applies one item, adding its report lines.
class ItemRun {
 public:
  ItemRun(Guest& guest, const GuestResetRequest& req, GeneralizeItem item, std::vector<IdentityChange>* report)
      : g_(guest), req_(req), item_(item), report_(report) {}

  Status Apply() {
    Status s;
    switch (item_) {
      case GeneralizeItem::kMachineId: s = MachineId(); break;
      case GeneralizeItem::kSshHostKeys: s = SshHostKeys(); break;
      case GeneralizeItem::kHostname: s = Hostname(); break;
      case GeneralizeItem::kCloudInit: s = CloudInit(); break;
      case GeneralizeItem::kNetworkBindings: s = NetworkBindings(); break;
      default: break;  // a host item: not here
    }
    End();
    return s;
  }

 private:
  // One report line (guest text made safe; past kMaxLinesPerItem only
  // counted, End() says how many more).
  void Note(const std::string& path, const std::string& change) {
    if (++lines_ > kMaxLinesPerItem) return;
    report_->push_back({item_, path.empty() ? "" : g_.DiskOf(path), SafeText(path), SafeText(change)});
  }
  void End() {
    if (lines_ > kMaxLinesPerItem) {
      report_->push_back({item_, "", "", "and " + std::to_string(lines_ - kMaxLinesPerItem) + " more changes, not listed"});
    }
  }
  // The item's error: one line naming it and the file.
  Status Fail(const std::string& path, const Status& s) {
    const std::string disk = path.empty() ? "" : g_.DiskOf(path);
    std::string where = path.empty() ? "" : " " + SafeText(path) + (disk.empty() ? "" : " on disk " + disk);
    return Status::IOError(std::string("generalize ") + GeneralizeItemName(item_) + ":" + where, SafeText(s.message()));
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
                                           "oraclelinux", "opensuse", "sles", "suse-based", "archlinux", "alpinelinux"};
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
      const std::string type = KeyTypeMadeOffline(name);
      if (!at_boot && !type.empty()) {
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
      const bool is_pub = name.size() > 4 && name.compare(name.size() - 4, 4, ".pub") == 0;
      const std::string priv = is_pub ? name.substr(0, name.size() - 4) : "";
      if (!at_boot && is_pub && !KeyTypeMadeOffline(priv).empty() &&
          std::find(keys.begin(), keys.end(), priv) != keys.end()) {
        continue;  // written with its private key
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
    // A guest named "localhost" (many cloud images): the loopback lines
    // name localhost itself, which must stay.
    if (old == "localhost" || old.rfind("localhost.", 0) == 0) {
      Note(hosts, "left as is: the old host name is localhost");
      return Status::OK();
    }
    Result<std::string> text = g_.Read(hosts);
    if (!text.ok()) return Fail(hosts, text.status());
    const int changed = RenameHost(&*text, old, name);
    if (changed == 0) return Status::OK();
    if (Status s = g_.Write(hosts, *text); !s.ok()) return Fail(hosts, s);
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
      if (!SetInstanceId(&*text, req_.instance_id)) {
        Note(path, "left as is: not plain YAML meta-data (clonekit edits \"instance-id: ...\" lines)");
        continue;
      }
      if (Status s = g_.Write(path, *text); !s.ok()) return Fail(path, s);
      Note(path, "instance-id set to " + req_.instance_id);
    }
    return Status::OK();
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
          const std::vector<std::string> what = RewriteMacs(&edited, req_.macs);
          if (what.empty()) continue;
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
  int lines_ = 0;
};

// Stops the appliance when the job is cancelled or the deadline passes:
// SIGKILL to its qemu (a child of this process whose command line names
// the first disk, a file only this job made), so that a libguestfs call
// waiting on it (a launch, a write into a FIFO...) returns. Checks until
// destroyed, so an appliance started after the cancel goes too.
class ApplianceWatchdog {
 public:
  enum Reason { kNone, kCancelled, kTimedOut };
  explicit ApplianceWatchdog(const GuestResetRequest& req)
      : req_(req), deadline_(std::chrono::steady_clock::now() + std::chrono::seconds(req.timeout_seconds)),
        thread_([this] { Run(); }) {}
  ~ApplianceWatchdog() {
    done_ = true;
    thread_.join();
  }
  Reason fired() const { return reason_; }
  Status Why() const {
    if (reason_ == kCancelled) return Status::Cancelled("cancelled");
    return Status::IOError("generalize", "stopped: the appliance took longer than " +
                                             std::to_string(req_.timeout_seconds) + " s");
  }

 private:
  void Run() {
    while (!done_) {
      if (reason_ == kNone && req_.cancel && req_.cancel->load()) reason_ = kCancelled;
      if (reason_ == kNone && std::chrono::steady_clock::now() > deadline_) reason_ = kTimedOut;
      if (reason_ != kNone && !req_.disks.empty()) KillAppliance(req_.disks[0].path);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  static void KillAppliance(const std::string& disk) {
    std::string needle = "file=";
    for (char c : disk) needle += c == ',' ? std::string(",,") : std::string(1, c);  // qemu's escaping
    DIR* proc = opendir("/proc");
    if (!proc) return;
    while (dirent* e = readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(atoi(e->d_name));
      if (pid <= 0) continue;
      std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const size_t paren = text.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream fields(text.substr(paren + 1));
      std::string state;
      pid_t ppid = 0;
      fields >> state >> ppid;
      if (ppid != getpid()) continue;
      std::ifstream cmd("/proc/" + std::string(e->d_name) + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
      // One argument "file=<disk>,...": the whole path, not a prefix of
      // another job's.
      std::istringstream args(cmdline);
      for (std::string arg; std::getline(args, arg, '\0');) {
        if (arg.rfind(needle, 0) == 0 && (arg.size() == needle.size() || arg[needle.size()] == ',')) {
          kill(pid, SIGKILL);
          break;
        }
      }
    }
    closedir(proc);
  }

  const GuestResetRequest& req_;
  const std::chrono::steady_clock::time_point deadline_;
  std::atomic<Reason> reason_{kNone};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

std::string HostnameFor(const std::string& clone_name) {
  std::string out = AsciiLower(clone_name.substr(0, clone_name.find('.')));
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  out = out.substr(0, 63);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "localhost" : out;
}

Result<std::vector<IdentityChange>> ResetGuestIdentity(const GuestResetRequest& req) {
  std::vector<IdentityChange> report;
  std::vector<GeneralizeItem> items;
  for (GeneralizeItem i : req.items.Items()) {
    if (IsGuestItem(i)) items.push_back(i);
  }
  if (items.empty()) return report;
  std::optional<ApplianceWatchdog> watchdog;
  try {
    watchdog.emplace(req);
  } catch (const std::system_error& e) {  // (out of threads: EAGAIN)
    return Status::IOError("generalize", std::string("cannot start the appliance's watchdog: ") + e.what());
  }
  // Any failure once the watchdog stopped the appliance is its doing.
  auto stopped = [&](Status s) { return watchdog->fired() != ApplianceWatchdog::kNone ? watchdog->Why() : s; };
  auto cancelled = [&] { return watchdog->fired() != ApplianceWatchdog::kNone || (req.cancel && req.cancel->load()); };
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
  if (Status s = guest.Launch(); !s.ok()) return stopped(s);
  timed("appliance");
  progress(0.5);  // the appliance's start is most of the time
  if (cancelled()) return stopped(Status::Cancelled("cancelled"));
  std::string why;
  const std::string root = guest.FindLinux(&why);
  if (root.empty()) {
    for (GeneralizeItem i : items) report.push_back({i, "", "", "not done: " + SafeText(why)});
    timed("inspection");
    if (Status s = guest.Finish(); !s.ok()) return stopped(s);
    timed("sync");
    return report;
  }
  if (Status s = guest.Mount(root); !s.ok()) return stopped(s);
  timed("inspection");
  for (size_t n = 0; n < items.size(); n++) {
    if (cancelled()) return stopped(Status::Cancelled("cancelled"));
    ItemRun run(guest, req, items[n], &report);
    if (Status s = run.Apply(); !s.ok()) return stopped(s);
    timed(GeneralizeItemName(items[n]));
    progress(0.5 + 0.45 * double(n + 1) / double(items.size()));
  }
  if (Status s = guest.Finish(); !s.ok()) return stopped(s);
  timed("sync");
  progress(1.0);
  return report;
}

}  // namespace clonekit::manager
