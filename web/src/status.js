// How a VM's status (from the API) is named and filtered in the list.
//
// The toolbar offers three filters. "Transitioning" gathers every
// in-between state (the seeds: powering up, shutting down, paused) and, in
// clonekit, a clone being made and a source locked by one.

export const FILTERS = ['Running', 'Off', 'Transitioning'];

const LABELS = {
  running: 'Running',
  shutoff: 'Off',
  paused: 'Paused',
  stopping: 'Stopping',
  starting: 'Starting',
  crashed: 'Crashed',
  suspended: 'Suspended',
  locked: 'Locked',
  cloning: 'Cloning',
  unreachable: 'Host unreachable',
};

export function statusLabel(status) {
  return LABELS[status] || status;
}

export function filterOf(status) {
  if (status === 'running') return 'Running';
  if (status === 'shutoff' || status === 'crashed') return 'Off';
  return 'Transitioning';
}

// Names as the service checks them (manager.cc CheckName/CheckNamespace);
// the page checks first only to say what is wrong before a round trip.
export function nameProblem(name, vms, namespace) {
  if (!name) return 'Name is required';
  if (name.length > 63) return 'At most 63 characters';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    return "Only letters, digits, '.', '_' and '-', starting with a letter or digit";
  }
  if (vms.some((vm) => vm.name === name && vm.namespace === namespace)) {
    return `A VM named ${name} already exists in namespace ${namespace}`;
  }
  return null;
}

export function namespaceProblem(ns) {
  if (!ns) return 'Namespace is required';
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(ns)) {
    return "1-63 lowercase letters, digits or '-', not starting or ending with '-'";
  }
  return null;
}

// A freshly loaded list, keeping any clone percentage already shown that is
// higher than the one loaded: a list requested before a progress event can
// arrive after it, and a job's progress never goes back.
export function keepProgress(shown, loaded) {
  if (!shown) return loaded;
  const before = new Map(shown.map((vm) => [vm.id, vm]));
  return loaded.map((vm) => {
    const old = before.get(vm.id);
    return vm.job != null && old && old.job === vm.job && (old.percent || 0) > (vm.percent || 0)
      ? { ...vm, percent: old.percent } : vm;
  });
}
