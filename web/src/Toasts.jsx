// The toast stack: bottom right, clear of the list's status column and the
// modals' fields; the newest few shown, the rest counted. Info and success
// close by themselves after 8 s (held while the pointer or focus is in one,
// to read a clone's report); errors stay until closed (the user must act).
import React, { useState } from 'react';
import { Alert, AlertActionCloseButton, AlertGroup, Button } from '@patternfly/react-core';

export const MAX_SHOWN = 3;

export function Toasts({ toasts, onClose }) {
  const shown = toasts.slice(-MAX_SHOWN);
  const hidden = toasts.length - shown.length;
  return (
    <AlertGroup isToast isLiveRegion className="ck-toasts"
      overflowMessage={hidden > 0 ? `${hidden} more` : ''} onOverflowClick={() => onClose(toasts[0].key)}>
      {shown.map((t) => (
        <Alert key={t.key} variant={t.variant} title={t.title} timeout={t.variant === 'danger' ? false : 8000}
          onTimeout={() => onClose(t.key)}
          actionClose={<AlertActionCloseButton onClose={() => onClose(t.key)} />}>
          {t.body}
          <IdentityChanges changes={t.changes} />
        </Alert>
      ))}
    </AlertGroup>
  );
}

// A clone job's identity changes (issue #15), folded into one link after
// the toast's text that counts them (and those not done), so that the toast
// is no taller over the list; unfolded, one line each ("item: disk:path —
// change"; a host item has no disk, a guest item that found no OS no path),
// the first few, the rest counted. Nothing when the job reports none.
export const MAX_CHANGES = 8;

export function changeLine(c) {
  const where = [c.disk, c.path].filter(Boolean).join(':');
  return `${c.item}: ${where ? `${where} — ` : ''}${c.change}`;
}

export function IdentityChanges({ changes }) {
  const [open, setOpen] = useState(false);
  if (!changes?.length) return null;
  const shown = changes.slice(0, MAX_CHANGES);
  const more = changes.length - shown.length;
  const notDone = changes.filter((c) => c.change.startsWith('not done')).length;
  const count = `${changes.length} ${changes.length === 1 ? 'change' : 'changes'}${notDone ? `, ${notDone} not done` : ''}`;
  return (
    <>
      {' '}
      <Button variant="link" isInline className="ck-identity-toggle" aria-expanded={open}
        onClick={() => setOpen((o) => !o)}>{`What's new: ${count}`}</Button>
      {open && (
        <ul className="ck-identity-changes" aria-label="What was made new">
          {shown.map((c, i) => <li key={i}>{changeLine(c)}</li>)}
          {more > 0 && <li className="ck-identity-more">and {more} more</li>}
        </ul>
      )}
    </>
  );
}
