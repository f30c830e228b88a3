// Browser checks of the console with two hosts (issue #16), run by hosts.sh
// inside the manager's namespace. Prints "ok - ..." / "FAIL - ..." per
// check; `--probe` only starts and stops chromium.
import { check, finish, launch, shot, until } from './harness.mjs';

const { URL, TOKEN } = process.env;
const browser = await launch();
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
const row = (name) => page.locator(`tr[data-vm="${name}"]`);
const rowNames = async () => page.locator('#vm-table tr[data-vm]').evaluateAll((rs) => rs.map((r) => r.dataset.vm).sort());
const hostOf = async (name) => (await row(name).locator('.ck-host').innerText()).trim();
const statusOf = async (name) => (await row(name).locator('.ck-status').innerText()).trim();

await page.goto(`${URL}#token=${TOKEN}`);
await check('the list shows v1 on host local (Host column)', async () => until('v1', async () => (await hostOf('v1')) === 'local'));

// The Clone dialog from snapshot s1, to host h2.
await row('v1').locator('td.pf-v6-c-table__toggle button').click();
await page.locator('tr[data-snapshot="s1"]').getByRole('button', { name: 'Clone' }).click();
const dialog = page.getByRole('dialog');
await dialog.locator('#clone-name').waitFor();
await check("the dialog offers the hosts with pools, the source's first", async () =>
  JSON.stringify(await dialog.locator('#clone-host option').evaluateAll((os) => os.map((o) => o.value))) === '["local","h2"]');
await check("... and on the source's host, its pools", async () =>
  JSON.stringify(await dialog.getByLabel('Storage pool for vda').locator('option').evaluateAll((os) => os.map((o) => o.value))) === '["main"]');
await dialog.locator('#clone-host').selectOption('h2');
await check("h2 chosen: vda's pool is h2's own (far), the only one offered", async () => until('far', async () =>
  (await dialog.getByLabel('Storage pool for vda').inputValue()) === 'far' &&
  (await dialog.getByLabel('Storage pool for vda').locator('option').count()) === 1));
await check('... instant and linked are not offered (a full copy only)', async () =>
  (await dialog.locator('#clone-mode-instant').isDisabled()) && (await dialog.locator('#clone-mode-linked').isDisabled()) &&
  (await dialog.locator('#clone-mode-full').isChecked()));
await check("... the guest's items are off and disabled, saying why", async () =>
  (await dialog.locator('#clone-generalize-machine-id').isDisabled()) &&
  !(await dialog.locator('#clone-generalize-machine-id').isChecked()) &&
  (await dialog.locator('#clone-generalize').innerText()).includes("only in images on this service's own host"));
await check("... a host item is judged by the definition alone (no NIC: no new MACs)", async () =>
  (await dialog.locator('#clone-generalize').innerText()).includes('The definition has no network interface'));
await check('... the help says where the disks go', async () =>
  (await dialog.innerText()).includes('copied from local into pools of h2'));
await dialog.locator('#clone-name').fill('c1');
await shot(page, 'clone-to-host');
await page.getByRole('button', { name: 'Clone Virtual Machine' }).click();
await check('the clone is listed on h2', async () => until('c1 on h2', async () => (await hostOf('c1')) === 'h2'));
await check('... and runs there (started by h2\'s libvirt)', async () => until('c1 running', async () => (await statusOf('c1')) === 'Running', 60000));

// The Host filter.
await page.locator('#host-filter').click();
await page.locator('.pf-v6-c-menu__list-item').filter({ hasText: 'h2' }).locator('input[type=checkbox]').click();
await page.keyboard.press('Escape');
await check('Host filter h2: only c1', async () => until('filtered', async () => JSON.stringify(await rowNames()) === '["c1"]'));
await check('... a "Host" label shows the filter', async () =>
  (await page.locator('#vm-toolbar .pf-v6-c-label-group').innerText()).includes('h2'));
await shot(page, 'host-filter');
await page.getByRole('button', { name: 'Clear all filters' }).first().click();
await check('cleared: both again', async () => until('both', async () => JSON.stringify(await rowNames()) === '["c1","v1"]'));
await check("c1's kebab: Edit says its disks are on another host, Clone is offered", async () => {
  await row('c1').getByRole('button', { name: 'Kebab toggle' }).click();
  const edit = page.getByRole('menuitem').filter({ hasText: /^Edit$/ });
  const clone = page.getByRole('menuitem').filter({ hasText: /^Clone$/ });
  await edit.waitFor();
  const ok = (await edit.getAttribute('aria-disabled')) === 'true' && (await clone.getAttribute('aria-disabled')) !== 'true';
  if (ok) await clone.click(); else await page.keyboard.press('Escape');
  return ok;
});
await check("c1's Clone dialog: a full copy only, made on h2 where its disks are", async () => until('on h2', async () =>
  (await dialog.locator('#clone-mode-instant').isDisabled()) && (await dialog.locator('#clone-mode-linked').isDisabled()) &&
  (await dialog.innerText()).includes("Only for a VM on this service's own host (this one is on h2)") &&
  !(await dialog.locator('#clone-live').count())));
await dialog.getByRole('button', { name: 'Cancel' }).click();
await check('no page errors', async () => pageErrors.length === 0 || Promise.reject(new Error(pageErrors.join('; '))));
await finish(browser);
