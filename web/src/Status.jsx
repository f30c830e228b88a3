// A VM's status cell: a clone's place in the queue or its progress, the
// lock of a source being cloned, else libvirt's state.
import React from 'react';
import { Label, Spinner } from '@patternfly/react-core';
import LockIcon from '@patternfly/react-icons/dist/esm/icons/lock-icon';
import { statusLabel } from './status.js';

export function Status({ vm }) {
  if (vm.status === 'cloning' && vm.queued) {
    return <span className="ck-status"><Label className="ck-queued">Queued{vm.queue_position ? ` (${vm.queue_position} in line)` : ''}</Label></span>;
  }
  if (vm.status === 'cloning') {
    const pct = Math.floor(vm.percent || 0);
    return <span className="ck-status"><Spinner size="lg" aria-label="Cloning" /> Cloning {pct}%</span>;
  }
  if (vm.status === 'locked') {
    return <Label icon={<LockIcon />} className="ck-status">Locked</Label>;
  }
  // A linked clone reads its source's snapshot until it is made standalone
  // (an instant clone's background copy, or a flatten: its progress).
  const linked = vm.linked_to && (
    <Label isCompact className="ck-linked" title={`Its disks read snapshot ${vm.linked_to.snapshot} of ${vm.linked_to.vm_name}`}>
      {vm.job ? `Copying ${Math.floor(vm.percent || 0)}%` : `Linked to ${vm.linked_to.vm_name} / ${vm.linked_to.snapshot}`}
    </Label>
  );
  return <span className="ck-status">{statusLabel(vm.status)}{linked && <> {linked}</>}</span>;
}

