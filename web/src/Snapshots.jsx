// A VM's snapshots, in its expanded row, each with Clone and Delete (which
// asks once more, and shows the service's reason when it refuses: a linked
// clone still reads the snapshot).
import React, { useEffect, useState } from 'react';
import { Alert, Button, Spinner } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { api } from './api.js';

// What each snapshot's disks hold of the guest's writes (docs/api.md).
const CONSISTENCY = {
  offline: 'Offline',
  crash: 'Crash-consistent',
  application: 'Application-consistent',
};

export function Snapshots({ vm, onClone }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [confirming, setConfirming] = useState(null);  // the snapshot whose Delete was pressed once
  const [refused, setRefused] = useState(null);
  const load = () => api.snapshots(vm.id).then(setList, (e) => setError(e.message));
  useEffect(() => { load(); }, [vm.id, vm.snapshots]);
  async function remove(name) {
    setConfirming(null);
    setRefused(null);
    try {
      await api.deleteSnapshot(vm.id, name);
      load();
    } catch (e) {
      setRefused(e.message);
    }
  }
  if (error) return <Alert variant="danger" isInline title="Cannot list snapshots">{error}</Alert>;
  if (!list) return <Spinner size="md" aria-label="Loading snapshots" />;
  return (
    <>
    {refused && <Alert variant="danger" isInline title="The snapshot was not deleted" className="ck-snapshot-refused">{refused}</Alert>}
    <Table aria-label={`Snapshots of ${vm.name}`} variant="compact">
      <Thead><Tr><Th>Snapshot</Th><Th>Taken</Th><Th>Consistency</Th><Th>Disks</Th><Th screenReaderText="Actions" /></Tr></Thead>
      <Tbody>
        {list.map((s) => (
          <Tr key={s.name} data-snapshot={s.name}>
            <Td dataLabel="Snapshot">{s.name}</Td>
            <Td dataLabel="Taken">{new Date(s.created).toLocaleString()}</Td>
            <Td dataLabel="Consistency" className="ck-consistency">{CONSISTENCY[s.consistency] || s.consistency}</Td>
            <Td dataLabel="Disks">{s.disks.map((d) => d.target).join(', ')}</Td>
            <Td isActionCell>
              <span className="ck-snapshot-actions">
                <Button variant="secondary" size="sm" onClick={() => onClone(s.name)}>Clone</Button>
                {confirming === s.name
                  ? <Button variant="danger" size="sm" onClick={() => remove(s.name)}>Confirm delete</Button>
                  : <Button variant="link" size="sm" isDanger onClick={() => setConfirming(s.name)}>Delete</Button>}
              </span>
            </Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
    </>
  );
}

