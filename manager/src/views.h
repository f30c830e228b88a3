// Views: what the manager answers, as typed records. The manager decides
// every value here (status, actions and their reasons, queue places); the
// API's JSON is only their encoding (api_json.cc).
//
// Thread-safety: values.
#ifndef CLONEKIT_MANAGER_VIEWS_H_
#define CLONEKIT_MANAGER_VIEWS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain_xml.h"
#include "host_probe.h"
#include "hypervisor.h"
#include "store.h"

namespace clonekit::manager {

// May it be done now, and if not, why (shown to the user as is).
struct Action {
  bool allowed = true;
  std::string reason;
};

struct VmActions {
  Action start, shutdown, force_off, clone, edit, remove, cancel_clone, flatten;
};

// A pool's space as its file system reports it now.
struct PoolSpace {
  std::string name, dir;
  bool known = false;  // statvfs answered
  uint64_t free_bytes = 0, size_bytes = 0;
};

// A host: the implicit 'local' (the service's --hypervisor) or a added one,
// with what its libvirt says now.
struct HostView {
  std::string name, uri;
  std::string ssh;  // where its pools are reached ("" for local)
  bool local = false;
  HostFacts facts;
  std::vector<PoolSpace> pools;  // the pools on this host
  std::string pools_error;       // why their space is not known (SSH failed)
};

// What `host remove --forget` dropped with a host that is gone: its
// records only (nothing on it was touched, nor could be).
struct ForgottenHost {
  std::string name;
  std::vector<std::string> vms;    // its VMs' entries
  std::vector<std::string> pools;  // its pools (a shared one only stops listing it)
  std::vector<int64_t> jobs;       // jobs whose partial files stay there
  std::string why;                 // what its libvirt's silence was, one line
};

struct VmView {
  VmRow vm;                       // xml is encoded only when `full`
  bool full = false;
  PowerDetail detail = PowerDetail::kShutoff;  // libvirt's; shutoff while cloning or undefined
  std::vector<int64_t> locked_by;  // active clones of its current state (it stays off)
  std::vector<int64_t> read_by;    // every active clone reading it (from a snapshot too)
  // While it is being made by a clone:
  std::optional<int64_t> job;
  double percent = 0;
  bool queued = false;
  std::optional<size_t> queue_position;
  std::optional<DomainInfo> info;  // its definition, read
  size_t snapshots = 0;
  // A linked clone (or an instant clone not yet flattened): the snapshot
  // its disks are overlays on.
  struct LinkedTo {
    int64_t vm = 0;
    std::string vm_name, snapshot;
  };
  std::optional<LinkedTo> linked_to;
  VmActions actions;
};

struct JobView {
  JobRow job;  // state and progress as live as the manager knows them
  std::optional<size_t> queue_position;
};

struct SnapshotView {
  std::string name, created;
  std::vector<DiskSpec> disks;
  Consistency consistency = Consistency::kOffline;
};

struct DiskDefault {
  std::string target, source, source_format, pool, format;
};

// The clone dialog's defaults and the source configuration it shows.
struct CloneDefaults {
  int64_t source_id = 0;
  std::string source_name, source_ns, source_host;
  std::string snapshot;  // "" = now
  std::string name, ns, description;
  bool start = true;
  bool source_running = false;
  // The clone shuts the source down first: it runs, and the clone is of
  // its current state (a snapshot's points are read-only: it keeps running).
  bool source_stops = false;
  std::vector<DiskDefault> disks;
  std::string host;  // the clone's host (its pools are the disks' defaults)
  DomainInfo summary;
  std::string configuration;  // the XML at the snapshot (or now)
};

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_VIEWS_H_
