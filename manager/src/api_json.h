// The API's JSON edge: requests decoded into typed values (every field's
// type checked, the field named in the error), the manager's views and
// errors encoded (with their HTTP status). The only file besides the routes that reads request JSON.
//
// Thread-safety: pure functions.
#ifndef CLONEKIT_MANAGER_API_JSON_H_
#define CLONEKIT_MANAGER_API_JSON_H_

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "clonekit/status.h"
#include "manager.h"
#include "views.h"

namespace clonekit::manager {

struct PoolRequest {
  std::string name, dir;
  std::vector<std::string> hosts;  // empty: "local"
};
struct HostRequest {
  std::string name, uri, ssh;
};
struct DefineRequest {
  std::string xml, ns = "default", description;
};
struct ImportRequest {
  std::string name, ns = "default";
  std::vector<std::string> disks;
};
struct UpdateRequest {
  std::optional<std::string> xml, description;
  std::optional<uint64_t> vcpus, memory_mib;  // the console's edit form
};

Result<PoolRequest> DecodePool(const json& body);
Result<HostRequest> DecodeHost(const json& body);
Result<DefineRequest> DecodeDefine(const json& body);
Result<ImportRequest> DecodeImport(const json& body);
Result<UpdateRequest> DecodeUpdate(const json& body);
Result<bool> DecodeStop(const json& body);           // "force"
Result<std::string> DecodeSnapshot(const json& body);  // "name"
Result<CloneRequest> DecodeClone(const json& body);  // source_vm left 0

// The answers' encodings (docs/api.md has their shapes).
json EncodePool(const Pool& pool);
json EncodePools(const std::vector<Pool>& pools);
json EncodeHost(const HostView& host);
json EncodeHosts(const std::vector<HostView>& hosts);
json EncodeForgottenHost(const ForgottenHost& forgotten);
json EncodeVm(const VmView& vm);
json EncodeVms(const std::vector<VmView>& vms);
json EncodeJob(const JobView& job);
json EncodeJobs(const std::vector<JobView>& jobs);
json EncodeSnapshots(const std::vector<SnapshotView>& snapshots);
json EncodeDefaults(const CloneDefaults& d);
// What the clone dialog and the edit form show of a configuration.
json EncodeSummary(const DomainInfo& info);

int HttpCode(const Status& s);
// {"error": message, "error_kind": "invalid"|"not_found"|...}
json ErrorJson(const Status& s);
const char* ErrorKind(const Status& s);

}  // namespace clonekit::manager

#endif  // CLONEKIT_MANAGER_API_JSON_H_
