// What the browser scripts share: chromium from Debian driven by
// playwright-core (from web/node_modules, NODE_PATH), `--probe`, and the
// checks printed as "ok - ..." / "FAIL - ..." with a summary at the end.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';

const require = createRequire(`${process.env.NODE_PATH}/`);
const { chromium } = require('playwright-core');

export const launch = () => chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

// `--probe`: only start and stop chromium (exit 0 if it can run here).
if (process.argv.includes('--probe')) {
  try {
    await (await launch()).close();
    process.exit(0);
  } catch (e) {
    console.log(`chromium: ${e.message.split('\n')[0]}`);
    process.exit(1);
  }
}

let failed = 0;
let passed = 0;
export async function check(what, fn) {
  try {
    const ok = await fn();
    if (ok === false) throw new Error('condition is false');
    passed++;
    console.log(`ok - ${what}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${what}: ${e.message.split('\n')[0]}`);
  }
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => false);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
// A picture of the page in $SCREENSHOTS, when set. Finite CSS transitions
// are fast-forwarded: the picture shows the settled page.
export async function shot(page, name) {
  const dir = process.env.SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: `${dir}/${name}.png`, animations: 'disabled' });
}
// The summary line, and the exit status: 1 if any check failed.
export async function finish(browser) {
  await browser.close();
  console.log(`${passed} passed, ${failed} failed (browser)`);
  process.exit(failed ? 1 : 0);
}
