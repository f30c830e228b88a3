// The console: the VM list of seed 004 with its clone flow, kept live by the
// manager's change feed.
import React, { useMemo, useState } from 'react';
import {
  Alert, EmptyState, EmptyStateBody, Masthead, MastheadBrand, MastheadMain, Page, PageSection, SearchInput, Spinner,
  Title, Toolbar, ToolbarContent, ToolbarFilter, ToolbarItem,
} from '@patternfly/react-core';
import { ActionsColumn, ExpandableRowContent, Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api, setToken } from './api.js';
import { CloneModal } from './CloneModal.jsx';
import { DeleteModal } from './DeleteModal.jsx';
import { EditModal } from './EditModal.jsx';
import { Snapshots } from './Snapshots.jsx';
import { Status } from './Status.jsx';
import { CheckFilter } from './CheckFilter.jsx';
import { FILTERS, filterOf } from './status.js';
import { Toasts } from './Toasts.jsx';
import { TokenPage } from './TokenPage.jsx';
import { useConsoleData } from './useConsoleData.js';

export default function App() {
  const { vms, pools, error, needToken, toasts, toast, closeToast, reload } = useConsoleData();
  const [filters, setFilters] = useState([]);  // all off: every VM shows
  const [hostFilters, setHostFilters] = useState([]);  // all off: every host
  const [search, setSearch] = useState('');
  const [clone, setClone] = useState(null);  // {vm, snapshot}
  const [edit, setEdit] = useState(null);
  const [removing, setRemoving] = useState(null);
  const [expanded, setExpanded] = useState({});

  const visible = useMemo(() => (vms || []).filter((vm) =>
    (filters.length === 0 || filters.includes(filterOf(vm.status))) &&
    (hostFilters.length === 0 || hostFilters.includes(vm.host)) &&
    (!search || vm.name.toLowerCase().includes(search.toLowerCase()))), [vms, filters, hostFilters, search]);
  // The hosts there are: those VMs are on, and those with pools.
  const hosts = useMemo(() => [...new Set(['local', ...(vms || []).map((vm) => vm.host),
    ...pools.flatMap((p) => p.hosts || [])])].filter(Boolean).sort((a, b) =>
    (a === 'local' ? -1 : b === 'local' ? 1 : a.localeCompare(b))), [vms, pools]);

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
      // A linked clone made standalone (its disks stop reading the snapshot).
      ...(vm.linked_to ? [item('flatten', 'Make standalone', () => act(`Cannot make ${vm.name} standalone`, () => api.flatten(vm.id)))] : []),
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
        <Toolbar id="vm-toolbar" clearAllFilters={() => { setFilters([]); setHostFilters([]); setSearch(''); }}>
          <ToolbarContent>
            <ToolbarItem>
              <SearchInput aria-label="Filter by name" placeholder="Filter by name" value={search}
                onChange={(_, v) => setSearch(v)} onClear={() => setSearch('')} />
            </ToolbarItem>
            <ToolbarFilter categoryName="Status" labels={filters}
              deleteLabel={(_, label) => setFilters((f) => f.filter((x) => x !== label))}
              deleteLabelGroup={() => setFilters([])}>
              <CheckFilter id="status-filter" label="Status" values={FILTERS} selected={filters} onChange={setFilters} />
            </ToolbarFilter>
            {hosts.length > 1 && (
              <ToolbarFilter categoryName="Host" labels={hostFilters}
                deleteLabel={(_, label) => setHostFilters((f) => f.filter((x) => x !== label))}
                deleteLabelGroup={() => setHostFilters([])}>
                <CheckFilter id="host-filter" label="Host" values={hosts} selected={hostFilters} onChange={setHostFilters} />
              </ToolbarFilter>
            )}
          </ToolbarContent>
        </Toolbar>
        {vms === null ? <Spinner aria-label="Loading virtual machines" /> : (
          <Table aria-label="Virtual machines" id="vm-table">
            <Thead>
              <Tr><Th screenReaderText="Snapshots" className="ck-expander" /><Th>Name</Th><Th>Namespace</Th><Th>Host</Th><Th>Status</Th><Th>Created</Th>
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
                  <Td dataLabel="Host" className="ck-host">{vm.host}</Td>
                  <Td dataLabel="Status"><Status vm={vm} /></Td>
                  <Td dataLabel="Created">{new Date(vm.created).toLocaleString()}</Td>
                  <Td isActionCell><ActionsColumn items={actions(vm)} /></Td>
                </Tr>
                {expanded[vm.id] && (
                  <Tr isExpanded>
                    <Td colSpan={7}>
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
      {clone && <CloneModal vm={clone.vm} snapshot={clone.snapshot} vms={vms || []} pools={pools} hosts={hosts}
        onClose={() => setClone(null)} onStarted={cloneStarted} />}
      {edit && <EditModal vm={edit} onClose={() => setEdit(null)}
        onSaved={() => { setEdit(null); toast('success', `${edit.name} saved`); reload(); }} />}
      {removing && <DeleteModal vm={removing} onClose={() => setRemoving(null)}
        onConfirm={() => { const vm = removing; setRemoving(null); act(`Cannot delete ${vm.name}`, () => api.remove(vm.id)); }} />}
      <Toasts toasts={toasts} onClose={closeToast} />
    </Page>
  );
}

