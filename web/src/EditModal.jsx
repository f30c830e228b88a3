// Edit: a form for what an admin changes (description, vCPUs, memory), the
// NICs and disks shown, the libvirt definition read-only. Allowed while the
// VM is a clone's source; a clone in progress keeps the configuration it
// started with. The service checks every value again.
import React, { useEffect, useState } from 'react';
import {
  Alert, Button, DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm,
  ExpandableSection, Form, FormGroup, Grid, GridItem, Modal, ModalBody, ModalFooter, ModalHeader, ModalVariant,
  Spinner, TextArea, TextInput,
} from '@patternfly/react-core';
import { api } from './api.js';

export function EditModal({ vm, onClose, onSaved }) {
  const [full, setFull] = useState(null);
  const [description, setDescription] = useState(vm.description);
  const [vcpus, setVcpus] = useState('');
  const [memory, setMemory] = useState('');
  const [error, setError] = useState(null);
  useEffect(() => {
    api.vm(vm.id).then((v) => {
      setFull(v);
      setDescription(v.description);
      setVcpus(String(v.summary?.vcpus ?? ''));
      setMemory(String(v.summary?.memory_mib ?? ''));
    }, (e) => setError(e.message));
  }, [vm.id]);
  async function save(event) {
    event?.preventDefault();
    const body = { description };
    if (vcpus !== String(full.summary.vcpus)) body.vcpus = Number(vcpus);
    if (memory !== String(full.summary.memory_mib)) body.memory_mib = Number(memory);
    try {
      await api.update(vm.id, body);
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
            <Grid hasGutter>
              <GridItem span={6}>
                <FormGroup label="vCPUs" fieldId="edit-vcpus">
                  <TextInput id="edit-vcpus" type="number" min={1} max={512} value={vcpus} onChange={(_, v) => setVcpus(v)} />
                </FormGroup>
              </GridItem>
              <GridItem span={6}>
                <FormGroup label="Memory (MiB)" fieldId="edit-memory">
                  <TextInput id="edit-memory" type="number" min={16} value={memory} onChange={(_, v) => setMemory(v)} />
                </FormGroup>
              </GridItem>
            </Grid>
            <DescriptionList isCompact isHorizontal id="edit-devices">
              <DescriptionListGroup>
                <DescriptionListTerm>Network interfaces</DescriptionListTerm>
                <DescriptionListDescription>
                  {full.summary.nics.length === 0 ? 'None' : full.summary.nics.map((n) => (
                    <div key={n.mac || n.source}>{n.type} {n.source} {n.model} <code>{n.mac}</code></div>))}
                </DescriptionListDescription>
              </DescriptionListGroup>
              <DescriptionListGroup>
                <DescriptionListTerm>Disks</DescriptionListTerm>
                <DescriptionListDescription>
                  {full.summary.disks.map((d) => (
                    <div key={d.target} title={d.file}>{d.target}: {d.file.split('/').pop()} ({d.format})</div>))}
                </DescriptionListDescription>
              </DescriptionListGroup>
            </DescriptionList>
            <ExpandableSection toggleText="Definition (libvirt domain XML, read-only)">
              <pre className="ck-xml" id="edit-xml">{full.xml}</pre>
            </ExpandableSection>
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
