// Confirms Delete: the definition goes, the disk images stay.
import React from 'react';
import { Button, Modal, ModalBody, ModalFooter, ModalHeader, ModalVariant } from '@patternfly/react-core';

export function DeleteModal({ vm, onClose, onConfirm }) {
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

