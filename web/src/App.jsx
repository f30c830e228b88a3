// The console: the VM list of seed 004 with its clone flow, kept live by the
// manager's change feed.
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Alert, AlertActionCloseButton, AlertGroup, Button, EmptyState, EmptyStateBody, Form, FormGroup, Label,
  Masthead, MastheadBrand, MastheadMain, MenuToggle, Modal, ModalBody, ModalFooter, ModalHeader, ModalVariant,
  Page, PageSection, SearchInput, Select, SelectList, SelectOption, Spinner, TextArea, TextInput, Title,
  Toolbar, ToolbarContent, ToolbarFilter, ToolbarItem,
} from '@patternfly/react-core';
import { ActionsColumn, ExpandableRowContent, Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import LockIcon from '@patternfly/react-icons/dist/esm/icons/lock-icon';
import { api, ApiError, followEvents, setToken, takeTokenFromUrl } from './api.js';
import { CloneModal } from './CloneModal.jsx';
import { FILTERS, filterOf, keepProgress, statusLabel } from './status.js';

let toastSeq = 0;

export default function App() {
  const [vms, setVms] = useState(null);
  const [pools, setPools] = useState([]);
  const [error, setError] = useState(null);
  const [needToken, setNeedToken] = useState(false);
  const [filters, setFilters] = useState([]);  // all off: every VM shows
  const [search, setSearch] = useState('');
  const [toasts, setToasts] = useState([]);
  const [clone, setClone] = useState(null);  // {vm, snapshot}
  const [edit, setEdit] = useState(null);
  const [removing, setRemoving] = useState(null);
  const [expanded, setExpanded] = useState({});
  const latest = useRef([]);  // the list as last loaded, for naming a job's source in its toast

  const toast = useCallback((variant, title, body) => {
    const key = ++toastSeq;
    setToasts((t) => [...t, { key, variant, title, body }]);
  }, []);

  const reload = useCallback(async () => {
    try {
      const [list, poolList] = await Promise.all([api.vms(), api.pools()]);
      setVms((shown) => keepProgress(shown, list));
      latest.current = list;
      setPools(poolList);
      setError(null);
      setNeedToken(false);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setNeedToken(true);
      else setError(e.message);
    }
  }, []);

  // Job events carry progress; the end of a job is told in a toast.
  const onJob = useCallback(async (data) => {
    if (data.state === 'running') {
      setVms((list) => list && list.map((vm) => (vm.job === data.id ? { ...vm, percent: data.percent, queued: false } : vm)));
      return;
    }
    let job;
    try {
      job = await api.job(data.id);
    } catch {
      return;
    }
    const source = latest.current.find((vm) => vm.id === job.source_vm)?.name || `VM ${job.source_vm}`;
    if (job.state === 'failed' && job.error_kind === 'source_did_not_stop') {
      toast('danger', `${source} failed to shut down`,
        `Power off ${source} manually, then open Clone again. (${job.error})`);
    } else if (job.state === 'failed') {
      toast('danger', `Cloning ${job.clone_name} failed`, job.error);
    } else if (job.state === 'cancelled') {
      toast('info', `Cloning ${job.clone_name} cancelled`, 'The clone and its disk images were removed.');
    } else if (job.state === 'succeeded') {
      toast('success', `${job.clone_name} is ready`, `Cloned from ${source}.`);
    }
  }, [toast]);

  useEffect(() => {
    takeTokenFromUrl();
    reload();
    let timer = null;
    const soon = () => {  // many events in a burst: one reload
      if (!timer) timer = setTimeout(() => { timer = null; reload(); }, 100);
    };
    const stop = followEvents((kind, data) => {
      if (kind === 'job') onJob(data);
      if (kind === 'job' && data.state === 'running') return;
      soon();
    }, reload);
    return () => { stop(); clearTimeout(timer); };
  }, [reload, onJob]);

  const visible = useMemo(() => (vms || []).filter((vm) =>
    (filters.length === 0 || filters.includes(filterOf(vm.status))) &&
    (!search || vm.name.toLowerCase().includes(search.toLowerCase()))), [vms, filters, search]);

  function cloneStarted(_job, cloneName) {
    const source = clone.vm.name;
    setClone(null);
    // Seed: if "Transitioning" is off, switch it on so the clone shows. With
    // no filter at all every VM shows already, and switching one on would
    // hide the rest.
    if (filters.length > 0 && !filters.includes('Transitioning')) setFilters((f) => [...f, 'Transitioning']);
    toast('info', `Cloning ${source} to ${cloneName} started`,
      clone.snapshot ? `From snapshot ${clone.snapshot}.` : undefined);
    reload();
  }

  async function act(what, fn) {
    try {
      await fn();
      reload();
    } catch (e) {
      toast('danger', what, e.message);
    }
  }

  // The kebab draws what the manager says may be done (vm.actions), with
  // its reason when not; it decides nothing itself.
  function actions(vm) {
    const can = (name) => vm.actions?.[name] || { allowed: false };
    const item = (name, title, onClick, extra = {}) => {
      const a = can(name);
      return { title, onClick, isAriaDisabled: !a.allowed, tooltipProps: a.reason && { content: a.reason }, ...extra };
    };
    if (can('cancel_clone').allowed) {
      return [item('cancel_clone', 'Cancel cloning', () => act(`Cannot cancel cloning ${vm.name}`, () => api.cancelJob(vm.job)))];
    }
    return [
      item('start', 'Run', () => act(`Cannot start ${vm.name}`, () => api.start(vm.id))),
      item('shutdown', 'Shut down', () => act(`Cannot shut down ${vm.name}`, () => api.stop(vm.id))),
      // For a guest that ignores the shutdown request (seed: "power off the
      // VM manually", then clone again).
      item('force_off', 'Force off', () => act(`Cannot power off ${vm.name}`, () => api.stop(vm.id, true))),
      item('clone', 'Clone', () => setClone({ vm })),
      item('edit', 'Edit', () => setEdit(vm)),
      { isSeparator: true },
      item('delete', 'Delete', () => setRemoving(vm), { isDanger: true }),
    ];
  }

  if (needToken) return <TokenPage onToken={(t) => { setToken(t); reload(); }} />;

  const header = (
    <Masthead>
      <MastheadMain><MastheadBrand><Title headingLevel="h1" size="xl">clonekit</Title></MastheadBrand></MastheadMain>
    </Masthead>
  );
  return (
    <Page masthead={header}>
      <PageSection>
        <Title headingLevel="h2">Virtual machines</Title>
      </PageSection>
      <PageSection>
        {error && <Alert variant="danger" isInline title="The service does not answer">{error}</Alert>}
        <Toolbar id="vm-toolbar" clearAllFilters={() => { setFilters([]); setSearch(''); }}>
          <ToolbarContent>
            <ToolbarItem>
              <SearchInput aria-label="Filter by name" placeholder="Filter by name" value={search}
                onChange={(_, v) => setSearch(v)} onClear={() => setSearch('')} />
            </ToolbarItem>
            <ToolbarFilter categoryName="Status" labels={filters}
              deleteLabel={(_, label) => setFilters((f) => f.filter((x) => x !== label))}
              deleteLabelGroup={() => setFilters([])}>
              <StatusFilter selected={filters} onChange={setFilters} />
            </ToolbarFilter>
          </ToolbarContent>
        </Toolbar>
        {vms === null ? <Spinner aria-label="Loading virtual machines" /> : (
          <Table aria-label="Virtual machines" id="vm-table">
            <Thead>
              <Tr><Th screenReaderText="Snapshots" /><Th>Name</Th><Th>Namespace</Th><Th>Status</Th><Th>Created</Th>
                <Th screenReaderText="Actions" /></Tr>
            </Thead>
            {visible.map((vm, i) => (
              <Tbody key={vm.id} isExpanded={!!expanded[vm.id]}>
                <Tr data-vm={vm.name}>
                  <Td expand={vm.snapshots > 0 ? {
                    rowIndex: i, isExpanded: !!expanded[vm.id],
                    onToggle: () => setExpanded((e) => ({ ...e, [vm.id]: !e[vm.id] })),
                    expandId: `snapshots-${vm.id}`,
                  } : undefined} />
                  <Td dataLabel="Name"><span className="ck-name">{vm.name}</span>
                    {vm.description && <div className="ck-description">{vm.description}</div>}</Td>
                  <Td dataLabel="Namespace">{vm.namespace}</Td>
                  <Td dataLabel="Status"><Status vm={vm} /></Td>
                  <Td dataLabel="Created">{new Date(vm.created).toLocaleString()}</Td>
                  <Td isActionCell><ActionsColumn items={actions(vm)} /></Td>
                </Tr>
                {expanded[vm.id] && (
                  <Tr isExpanded>
                    <Td colSpan={6}>
                      <ExpandableRowContent>
                        <Snapshots vm={vm} onClone={(snapshot) => setClone({ vm, snapshot })} />
                      </ExpandableRowContent>
                    </Td>
                  </Tr>
                )}
              </Tbody>
            ))}
          </Table>
        )}
        {vms !== null && visible.length === 0 && (
          <EmptyState titleText="No virtual machines match" headingLevel="h3">
            <EmptyStateBody>{vms.length ? 'Clear the filters to see every VM.' : 'Define or import a VM with the clonekit CLI.'}</EmptyStateBody>
          </EmptyState>
        )}
      </PageSection>
      {clone && <CloneModal vm={clone.vm} snapshot={clone.snapshot} vms={vms || []} pools={pools}
        onClose={() => setClone(null)} onStarted={cloneStarted} />}
      {edit && <EditModal vm={edit} onClose={() => setEdit(null)}
        onSaved={() => { setEdit(null); toast('success', `${edit.name} saved`); reload(); }} />}
      {removing && <DeleteModal vm={removing} onClose={() => setRemoving(null)}
        onConfirm={() => { const vm = removing; setRemoving(null); act(`Cannot delete ${vm.name}`, () => api.remove(vm.id)); }} />}
      <AlertGroup isToast isLiveRegion>
        {toasts.map((t) => (
          <Alert key={t.key} variant={t.variant} title={t.title} timeout={t.variant === 'danger' ? false : 8000}
            onTimeout={() => setToasts((all) => all.filter((x) => x.key !== t.key))}
            actionClose={<AlertActionCloseButton onClose={() => setToasts((all) => all.filter((x) => x.key !== t.key))} />}>
            {t.body}
          </Alert>
        ))}
      </AlertGroup>
    </Page>
  );
}

function Status({ vm }) {
  if (vm.status === 'cloning' && vm.queued) {
    return <span className="ck-status"><Label className="ck-queued">Queued{vm.queue_position ? ` (${vm.queue_position} in line)` : ''}</Label></span>;
  }
  if (vm.status === 'cloning') {
    const pct = Math.floor(vm.percent || 0);
    return <span className="ck-status"><Spinner size="md" aria-label="Cloning" /> Cloning {pct}%</span>;
  }
  if (vm.status === 'locked') {
    return <Label icon={<LockIcon />} className="ck-status">Locked</Label>;
  }
  return <span className="ck-status">{statusLabel(vm.status)}</span>;
}

function StatusFilter({ selected, onChange }) {
  const [open, setOpen] = useState(false);
  const toggle = (value) => onChange(selected.includes(value) ? selected.filter((x) => x !== value) : [...selected, value]);
  return (
    <Select role="menu" isOpen={open} onOpenChange={setOpen} selected={selected}
      onSelect={(_, value) => toggle(value)}
      toggle={(ref) => (
        <MenuToggle ref={ref} onClick={() => setOpen(!open)} isExpanded={open} id="status-filter"
          badge={selected.length ? <span className="ck-filter-count">{selected.length}</span> : undefined}>
          Status
        </MenuToggle>
      )}>
      <SelectList>
        {FILTERS.map((f) => <SelectOption key={f} value={f} hasCheckbox isSelected={selected.includes(f)}>{f}</SelectOption>)}
      </SelectList>
    </Select>
  );
}

function Snapshots({ vm, onClone }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api.snapshots(vm.id).then(setList, (e) => setError(e.message)); }, [vm.id, vm.snapshots]);
  if (error) return <Alert variant="danger" isInline title="Cannot list snapshots">{error}</Alert>;
  if (!list) return <Spinner size="md" aria-label="Loading snapshots" />;
  return (
    <Table aria-label={`Snapshots of ${vm.name}`} variant="compact">
      <Thead><Tr><Th>Snapshot</Th><Th>Taken</Th><Th>Disks</Th><Th screenReaderText="Actions" /></Tr></Thead>
      <Tbody>
        {list.map((s) => (
          <Tr key={s.name} data-snapshot={s.name}>
            <Td dataLabel="Snapshot">{s.name}</Td>
            <Td dataLabel="Taken">{new Date(s.created).toLocaleString()}</Td>
            <Td dataLabel="Disks">{s.disks.map((d) => d.target).join(', ')}</Td>
            <Td isActionCell><Button variant="secondary" size="sm" onClick={() => onClone(s.name)}>Clone</Button></Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

// Edit: the description and the definition. Allowed while the VM is a
// clone's source; the clone in progress keeps the configuration it started with.
function EditModal({ vm, onClose, onSaved }) {
  const [full, setFull] = useState(null);
  const [description, setDescription] = useState(vm.description);
  const [xml, setXml] = useState('');
  const [error, setError] = useState(null);
  useEffect(() => { api.vm(vm.id).then((v) => { setFull(v); setXml(v.xml); setDescription(v.description); }, (e) => setError(e.message)); }, [vm.id]);
  async function save(event) {
    event?.preventDefault();
    try {
      await api.update(vm.id, { description, xml });
      onSaved();
    } catch (e) {
      setError(e.message);
    }
  }
  return (
    <Modal variant={ModalVariant.medium} isOpen onClose={onClose} aria-labelledby="edit-title">
      <ModalHeader title={`Edit ${vm.name}`} labelId="edit-title" />
      <ModalBody>
        {error && <Alert variant="danger" isInline title="Not saved">{error}</Alert>}
        {!full ? <Spinner aria-label="Loading" /> : (
          <Form id="edit-form" onSubmit={save}>
            <FormGroup label="Description" fieldId="edit-description">
              <TextArea id="edit-description" value={description} onChange={(_, v) => setDescription(v)} />
            </FormGroup>
            <FormGroup label="Definition (libvirt domain XML)" fieldId="edit-xml">
              <TextArea id="edit-xml" value={xml} onChange={(_, v) => setXml(v)} rows={14} className="ck-xml" />
            </FormGroup>
          </Form>
        )}
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form="edit-form" isDisabled={!full}>Save</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function DeleteModal({ vm, onClose, onConfirm }) {
  return (
    <Modal variant={ModalVariant.small} isOpen onClose={onClose} aria-labelledby="delete-title">
      <ModalHeader title={`Delete ${vm.name}?`} labelId="delete-title" titleIconVariant="warning" />
      <ModalBody>The definition and its snapshots are removed; the disk images are kept.</ModalBody>
      <ModalFooter>
        <Button variant="danger" onClick={onConfirm}>Delete</Button>
        <Button variant="link" onClick={onClose}>Cancel</Button>
      </ModalFooter>
    </Modal>
  );
}

function TokenPage({ onToken }) {
  const [token, setValue] = useState('');
  return (
    <Page>
      <PageSection>
        <Title headingLevel="h1">clonekit</Title>
        <Form onSubmit={(e) => { e.preventDefault(); onToken(token); }} style={{ maxWidth: 480 }}>
          <FormGroup label="API token" isRequired fieldId="token">
            <TextInput id="token" type="password" value={token} onChange={(_, v) => setValue(v)} autoFocus />
          </FormGroup>
          <Button type="submit" isDisabled={!token}>Connect</Button>
        </Form>
      </PageSection>
    </Page>
  );
}
