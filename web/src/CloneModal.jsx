// The Clone Virtual Machine modal (seed 004, and oVirt's per-disk target
// pool and format). Everything is pre-filled from the API's clone-defaults
// for the VM now, or for one of its snapshots.
import React, { useEffect, useState } from 'react';
import {
  Alert, Button, Checkbox, DescriptionList, DescriptionListDescription, DescriptionListGroup,
  DescriptionListTerm, Form, FormGroup, FormHelperText, FormSelect, FormSelectOption, HelperText,
  HelperTextItem, Modal, ModalBody, ModalFooter, ModalHeader, ModalVariant, Radio, Spinner, TextArea, TextInput,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api } from './api.js';
import { nameProblem, namespaceProblem } from './status.js';

export function CloneModal({ vm, snapshot, vms, pools, hosts, onClose, onStarted }) {
  const [defaults, setDefaults] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [namespace, setNamespace] = useState('');
  const [start, setStart] = useState(true);
  const [live, setLive] = useState(false);
  // How the disks are made: 'full' copies, 'instant' (runs at once, copied
  // while it runs) or 'linked' (stays on the snapshot's files).
  const [mode, setMode] = useState('full');
  const overlays = mode !== 'full';
  const [disks, setDisks] = useState([]);
  // Make it a new machine: item -> on, from the defaults (issue #15).
  const [generalize, setGeneralize] = useState({});
  const [submitError, setSubmitError] = useState(null);
  const [busy, setBusy] = useState(false);
  // The host to make it on (issue #16): the source's, or another with pools
  // (its disks are then streamed there; a full copy only).
  const [host, setHost] = useState(vm.host || 'local');
  const otherHost = host !== (vm.host || 'local');
  // A VM on another host than the service's: its disks are copied there,
  // where they are (a full copy only), into its pools or another host's,
  // but not into the service's own (only into one shared with its host).
  const remoteSource = (vm.host || 'local') !== 'local';
  const fullOnly = otherHost || remoteSource;
  const poolHosts = (p) => p.hosts || ['local'];
  const targets = (hosts || []).filter((h) => h === vm.host || pools.some((p) => poolHosts(p).includes(h) &&
    (!remoteSource || h !== 'local' || poolHosts(p).includes(vm.host))));
  const poolsOnHost = pools.filter((p) => (p.hosts || ['local']).includes(host));

  useEffect(() => {
    api.cloneDefaults(vm.id, snapshot).then((d) => {
      setDefaults(d);
      setName(d.name);
      setDescription(d.description);
      setNamespace(d.namespace);
      setStart(d.start);
      setDisks(d.disks);
      setGeneralize(Object.fromEntries((d.generalize || []).map((g) => [g.item, g.applies && g.default])));
    }, (e) => setLoadError(e.message));
  }, [vm.id, snapshot]);

  // Another host: its pools are the disks' defaults, and what applies there.
  function changeHost(h) {
    setHost(h);
    if (h !== (vm.host || 'local') || remoteSource) setMode('full');
    api.cloneDefaults(vm.id, snapshot, h).then((d) => {
      setDisks(d.disks);
      setDefaults((old) => ({ ...old, host: d.host, generalize: d.generalize }));
      setGeneralize(Object.fromEntries((d.generalize || []).map((g) => [g.item, g.applies && g.default])));
    }, (e) => setSubmitError(e.message));
  }

  const nameError = nameProblem(name, vms, namespace);
  const problem = defaults && (nameError || namespaceProblem(namespace));
  const setDisk = (target, field, value) =>
    setDisks((all) => all.map((d) => (d.target === target ? { ...d, [field]: value } : d)));

  async function submit(event) {
    event?.preventDefault();
    if (problem || busy) return;
    setBusy(true);
    setSubmitError(null);
    const body = { name, namespace, description, start: mode === 'instant' || start, disks: {} };
    if (otherHost) body.host = host;
    if (live && !overlays) body.live = true;
    if (mode !== 'full') body[mode] = true;
    if (snapshot) body.snapshot = snapshot;
    // An overlay is qcow2: its format is not asked.
    for (const d of disks) body.disks[d.target] = overlays ? { pool: d.pool } : { pool: d.pool, format: d.format };
    // Every item, on or off as shown (an item that does not apply is off).
    if (defaults.generalize) {
      body.generalize = Object.fromEntries(defaults.generalize.map((g) => [g.item, g.applies && !!generalize[g.item]]));
    }
    try {
      const job = await api.clone(vm.id, body);
      onStarted(job, name);
    } catch (e) {
      setSubmitError(e.message);
      setBusy(false);
    }
  }

  const title = snapshot ? `Clone ${vm.name} from snapshot ${snapshot}` : `Clone ${vm.name}`;
  return (
    <Modal variant={ModalVariant.medium} isOpen onClose={onClose} aria-labelledby="clone-title"
      aria-describedby="clone-body">
      <ModalHeader title="Clone Virtual Machine" labelId="clone-title" description={title} />
      <ModalBody id="clone-body">
        {loadError && <Alert variant="danger" isInline title="Cannot prepare the clone">{loadError}</Alert>}
        {!defaults && !loadError && <Spinner size="lg" aria-label="Loading" />}
        {defaults && (
          <>
            {defaults.source_stops && !live && !overlays && (
              <Alert variant="warning" isInline title={`${vm.name} is still running`} className="ck-running-warning">
                It will be shut down before cloning and started again once the clone is done.
              </Alert>
            )}
            {defaults.source_stops && !overlays && !remoteSource && (
              <Checkbox id="clone-live" isChecked={live} onChange={(_, v) => setLive(v)}
                label="Keep it running (clone from a live snapshot taken now)"
                description="The snapshot stays listed on the source." />
            )}
            {defaults.source_running && !defaults.source_stops && (
              <Alert variant="info" isInline title={`${vm.name} keeps running`} className="ck-keeps-running">
                A clone from a snapshot reads only the snapshot's read-only files.
              </Alert>
            )}
            {defaults.source_stops && overlays && (
              <Alert variant="info" isInline title={`${vm.name} keeps running`} className="ck-keeps-running">
                A snapshot is taken now for the clone to start from; it stays listed on the source.
              </Alert>
            )}
            {submitError && <Alert variant="danger" isInline title="The clone did not start">{submitError}</Alert>}
            <Form id="clone-form" onSubmit={submit}>
              <FormGroup label="Name" isRequired fieldId="clone-name">
                <TextInput id="clone-name" isRequired value={name} onChange={(_, v) => setName(v)}
                  validated={nameError ? 'error' : 'default'} autoFocus />
                <FormHelperText>
                  <HelperText>
                    {nameError
                      ? <HelperTextItem variant="error" id="clone-name-problem">{nameError}</HelperTextItem>
                      : <HelperTextItem>The new VM gets a new UUID; what else is new is chosen below.</HelperTextItem>}
                  </HelperText>
                </FormHelperText>
              </FormGroup>
              <FormGroup label="Description" fieldId="clone-description">
                <TextArea id="clone-description" value={description} onChange={(_, v) => setDescription(v)}
                  resizeOrientation="vertical" />
              </FormGroup>
              <FormGroup label="Namespace" fieldId="clone-namespace">
                <TextInput id="clone-namespace" value={namespace} onChange={(_, v) => setNamespace(v)}
                  validated={namespaceProblem(namespace) ? 'error' : 'default'} />
                {namespaceProblem(namespace) && (
                  <FormHelperText><HelperText>
                    <HelperTextItem variant="error">{namespaceProblem(namespace)}</HelperTextItem>
                  </HelperText></FormHelperText>
                )}
              </FormGroup>
              {targets.length > 1 && (
                <FormGroup label="Host" fieldId="clone-host">
                  <FormSelect id="clone-host" value={host} aria-label="Host" onChange={(_, v) => changeHost(v)}>
                    {targets.map((h) => <FormSelectOption key={h} value={h} label={h === vm.host ? `${h} (the source's)` : h} />)}
                  </FormSelect>
                  <FormHelperText><HelperText><HelperTextItem>
                    {otherHost
                      ? `The disks are copied from ${vm.host} into pools of ${host} over an encrypted link, and the clone is defined there.`
                      : remoteSource ? `The disks are copied on ${vm.host}, where they are, and the clone is defined there.`
                        : 'The clone is defined on the source\'s host.'}
                  </HelperTextItem></HelperText></FormHelperText>
                </FormGroup>
              )}
              <FormGroup label="Disks are" fieldId="clone-mode" role="radiogroup" isStack>
                <Radio id="clone-mode-full" name="clone-mode" isChecked={mode === 'full'} onChange={() => setMode('full')}
                  label="Copied, then the clone is defined"
                  description="Standalone images in the chosen pools and formats." />
                <Radio id="clone-mode-instant" name="clone-mode" isChecked={mode === 'instant'} onChange={() => setMode('instant')}
                  label="Instant: start now, copy in the background" isDisabled={fullOnly}
                  description={remoteSource ? `Only for a VM on this service's own host (this one is on ${vm.host}).`
                    : otherHost ? 'Only on the source\'s host: it runs on overlays of the snapshot\'s files.'
                    : 'It runs at once on overlays of the snapshot and ends standalone (qcow2); cancel the copy and it stays linked.'} />
                <Radio id="clone-mode-linked" name="clone-mode" isChecked={mode === 'linked'} onChange={() => setMode('linked')}
                  label="Linked: share the snapshot's files" isDisabled={fullOnly}
                  description={remoteSource ? `Only for a VM on this service's own host (this one is on ${vm.host}).`
                    : otherHost ? 'Only on the source\'s host: it shares the snapshot\'s files.'
                    : 'Nothing is copied; the snapshot cannot be deleted while the clone needs it. Make it standalone later.'} />
              </FormGroup>
              <Checkbox id="clone-start" label="Start virtual machine after cloning" isChecked={mode === 'instant' || start}
                isDisabled={mode === 'instant'} onChange={(_, v) => setStart(v)} />
              <FormGroup label="Disks" fieldId="clone-disks" role="group">
                <Table aria-label="Target storage per disk" variant="compact" id="clone-disks">
                  <Thead><Tr><Th>Disk</Th><Th>Source</Th><Th>Storage pool</Th><Th>Format</Th></Tr></Thead>
                  <Tbody>
                    {disks.map((d) => (
                      <Tr key={d.target}>
                        <Td dataLabel="Disk">{d.target}</Td>
                        {/* The file's name; its whole path on hover and in the configuration below. */}
                        <Td dataLabel="Source" modifier="truncate"><span title={d.source}>{d.source.split('/').pop()}</span> ({d.source_format})</Td>
                        <Td dataLabel="Storage pool">
                          <FormSelect value={d.pool} aria-label={`Storage pool for ${d.target}`}
                            onChange={(_, v) => setDisk(d.target, 'pool', v)}>
                            {poolsOnHost.map((p) => <FormSelectOption key={p.name} value={p.name} label={p.name} />)}
                          </FormSelect>
                        </Td>
                        <Td dataLabel="Format">
                          <FormSelect value={overlays ? 'qcow2' : d.format} aria-label={`Format for ${d.target}`}
                            isDisabled={overlays} onChange={(_, v) => setDisk(d.target, 'format', v)}>
                            <FormSelectOption value="qcow2" label="qcow2" />
                            <FormSelectOption value="raw" label="raw" />
                          </FormSelect>
                        </Td>
                      </Tr>
                    ))}
                  </Tbody>
                </Table>
              </FormGroup>
              {defaults.generalize && (
                <Generalize items={defaults.generalize} on={generalize}
                  onChange={(item, v) => setGeneralize((g) => ({ ...g, [item]: v }))} />
              )}
              <Configuration summary={defaults.summary} />
            </Form>
          </>
        )}
      </ModalBody>
      <ModalFooter>
        <Button variant="primary" type="submit" form="clone-form" isDisabled={!defaults || !!problem || busy}
          {...(busy ? { isLoading: true } : {})}>Clone Virtual Machine</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

// What makes the clone a new machine, item by item (issue #15): a label
// and what it does; the API gives the items, their defaults and whether a
// host item applies to this definition.
const GENERALIZE_TEXT = {
  'machine-id': ['New machine ID', '/etc/machine-id emptied; systemd makes a new one at first boot'],
  'ssh-host-keys': ['New SSH host keys', "/etc/ssh/ssh_host_* made anew, or removed where sshd makes them at boot"],
  hostname: ["Host name = the clone's name", '/etc/hostname and /etc/hosts name the clone'],
  'cloud-init': ["Run cloud-init's first boot again", 'Its instance state is cleared'],
  'network-bindings': ['Network settings follow the new MACs',
    "NetworkManager/udev/ifcfg/networkd files naming the source's MACs, DHCP leases"],
  'mac-addresses': ['New MAC addresses', 'On every network interface'],
  'smbios-serial': ['New SMBIOS serial', 'The system serial the definition sets'],
  genid: ['New VM generation ID', "The definition's <genid>: a guest that reads it knows it was copied"],
  tpm: ['New, empty TPM', "Off: the TPM's state is copied, so keys sealed in it (BitLocker, LUKS) still work"],
};

const capitalized = (text) => text.charAt(0).toUpperCase() + text.slice(1);

function Generalize({ items, on, onChange }) {
  const box = (g) => {
    const [label, description] = GENERALIZE_TEXT[g.item] || [g.item, ''];
    return (
      <Checkbox key={g.item} id={`clone-generalize-${g.item}`} label={label}
        isChecked={g.applies && !!on[g.item]} isDisabled={!g.applies}
        description={g.applies ? description : capitalized(g.reason || '')}
        onChange={(_, v) => onChange(g.item, v)} />
    );
  };
  const guest = items.filter((g) => g.side === 'guest');
  const host = items.filter((g) => g.side !== 'guest');
  return (
    <FormGroup label="Make it a new machine" fieldId="clone-generalize" role="group" id="clone-generalize">
      {guest.length > 0 && (
        <FormGroup label="Inside the guest (Linux, found by inspection)" fieldId="clone-generalize-guest" role="group" isStack>
          {guest.map(box)}
        </FormGroup>
      )}
      {host.length > 0 && (
        <FormGroup label="In the definition" fieldId="clone-generalize-host" role="group" isStack>
          {host.map(box)}
        </FormGroup>
      )}
    </FormGroup>
  );
}

// The source's configuration, for reference only (seed: "cannot be modified
// here prior to cloning").
function Configuration({ summary }) {
  const nics = summary.nics.length
    ? summary.nics.map((n) => [n.type, n.source, n.model].filter(Boolean).join(' / ')).join(', ')
    : 'none';
  return (
    <FormGroup label="Source configuration (read-only)" fieldId="clone-configuration" role="group">
      <DescriptionList isCompact isHorizontal id="clone-configuration">
        <Item term="CPUs" value={summary.vcpus || '—'} />
        <Item term="Memory" value={summary.memory_mib ? `${summary.memory_mib} MiB` : '—'} />
        <Item term="Disks" value={summary.disks.map((d) => `${d.target}: ${d.file} (${d.format})`).join(', ') || 'none'} />
        <Item term="Network interfaces" value={nics} />
      </DescriptionList>
    </FormGroup>
  );
}

function Item({ term, value }) {
  return (
    <DescriptionListGroup>
      <DescriptionListTerm>{term}</DescriptionListTerm>
      <DescriptionListDescription>{String(value)}</DescriptionListDescription>
    </DescriptionListGroup>
  );
}
