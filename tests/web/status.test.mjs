// The page's own rules (web/src/status.js), run by node's test runner: which
// filter a status falls under (seed 004: "Transitioning" gathers every
// in-between state) and the name checks shown before a round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FILTERS, filterOf, keepProgress, nameProblem, namespaceProblem, statusLabel } from '../../web/src/status.js';

test('the toolbar offers Running, Off and Transitioning', () => {
  assert.deepEqual(FILTERS, ['Running', 'Off', 'Transitioning']);
});

test('every in-between state is Transitioning', () => {
  for (const s of ['starting', 'stopping', 'paused', 'suspended', 'cloning', 'locked']) {
    assert.equal(filterOf(s), 'Transitioning', s);
  }
});

test('settled states have their own filter', () => {
  assert.equal(filterOf('running'), 'Running');
  assert.equal(filterOf('shutoff'), 'Off');
  assert.equal(filterOf('crashed'), 'Off');
});

test('every status has a label; an unknown one is shown as sent', () => {
  assert.equal(statusLabel('locked'), 'Locked');
  assert.equal(statusLabel('cloning'), 'Cloning');
  assert.equal(statusLabel('shutoff'), 'Off');
  assert.equal(statusLabel('migrating'), 'migrating');
});

test('the name is required and says why it is refused', () => {
  const vms = [{ name: 'vm1-clone', namespace: 'default' }];
  assert.match(nameProblem('', vms, 'default'), /required/);
  assert.match(nameProblem('a'.repeat(64), vms, 'default'), /63/);
  assert.equal(nameProblem('a'.repeat(63), vms, 'default'), null);
  assert.match(nameProblem('<img src=x onerror=alert(1)>', vms, 'default'), /letters/);
  assert.match(nameProblem('-leading', vms, 'default'), /starting with/);
  assert.match(nameProblem('vm1-clone', vms, 'default'), /already exists/);
  assert.equal(nameProblem('vm1-clone', vms, 'team-b'), null, 'unique per namespace');
  assert.equal(nameProblem('vm1.clone_2', vms, 'default'), null);
});

test('namespaces follow the DNS-label rule', () => {
  assert.match(namespaceProblem(''), /required/);
  assert.equal(namespaceProblem('team-b'), null);
  assert.notEqual(namespaceProblem('Bad_NS'), null);
  assert.notEqual(namespaceProblem('-x'), null);
  assert.notEqual(namespaceProblem('a'.repeat(64)), null);
});

test('a list loaded late never takes a running clone\'s percentage back', () => {
  const shown = [{ id: 1, job: 7, percent: 11 }, { id: 2, status: 'shutoff' }];
  const stale = [{ id: 1, job: 7, percent: 0 }, { id: 2, status: 'running' }, { id: 3, job: 8, percent: 5 }];
  const merged = keepProgress(shown, stale);
  assert.equal(merged[0].percent, 11, 'older response, same job: the higher percentage stays');
  assert.equal(merged[1].status, 'running', 'everything else comes from the list');
  assert.equal(merged[2].percent, 5, 'a new clone shows what was loaded');
  assert.equal(keepProgress(shown, [{ id: 1, job: 9, percent: 2 }])[0].percent, 2, 'another job starts from its own value');
  assert.equal(keepProgress(shown, [{ id: 1, job: 7, percent: 40 }])[0].percent, 40, 'newer values win');
  assert.deepEqual(keepProgress(null, stale), stale, 'first load');
});
