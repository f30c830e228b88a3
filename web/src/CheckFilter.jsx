// A toolbar filter: a checkbox per value (the Status filter: status.js's
// FILTERS; the Host filter: the hosts VMs are on).
import React, { useState } from 'react';
import { MenuToggle, Select, SelectList, SelectOption } from '@patternfly/react-core';

export function CheckFilter({ id, label, values, selected, onChange }) {
  const [open, setOpen] = useState(false);
  const toggle = (value) => onChange(selected.includes(value) ? selected.filter((x) => x !== value) : [...selected, value]);
  return (
    <Select role="menu" isOpen={open} onOpenChange={setOpen} selected={selected}
      onSelect={(_, value) => toggle(value)}
      toggle={(ref) => (
        <MenuToggle ref={ref} onClick={() => setOpen(!open)} isExpanded={open} id={id}
          badge={selected.length ? <span className="ck-filter-count">{selected.length}</span> : undefined}>
          {label}
        </MenuToggle>
      )}>
      <SelectList>
        {values.map((f) => <SelectOption key={f} value={f} hasCheckbox isSelected={selected.includes(f)}>{f}</SelectOption>)}
      </SelectList>
    </Select>
  );
}
