// The toast stack: bottom right, clear of the list's status column and the
// modals' fields; the newest few shown, the rest counted. Info and success
// close by themselves after 8 s; errors stay until closed (the user must act).
import React from 'react';
import { Alert, AlertActionCloseButton, AlertGroup } from '@patternfly/react-core';

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
        </Alert>
      ))}
    </AlertGroup>
  );
}
