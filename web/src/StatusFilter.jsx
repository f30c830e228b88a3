// The toolbar's Status filter: a checkbox per filter of status.js.
import React, { useState } from 'react';
import { MenuToggle, Select, SelectList, SelectOption } from '@patternfly/react-core';
import { FILTERS } from './status.js';

export function StatusFilter({ selected, onChange }) {
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

