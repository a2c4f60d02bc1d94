// Drives the strangler dashboard in headless Chromium, the way a person would use it.
//
//   node dashboard.mjs <admin-url> <token> <screenshot-path>
//
// Run by tests/tests/dashboard.rs against a proxy that has already seen traffic: a shadowed
// catalog with one wrong price (a regression at /body/price_cents), a greeting whose candidate
// answers markup, a legacy route `health`, and a path holding <script>alert(1)</script>.
// Exits 0 when every check holds, 1 otherwise (with a screenshot either way).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [adminUrl, token, screenshotPath] = process.argv.slice(2);
if (!adminUrl || !token || !screenshotPath) {
  console.error('usage: node dashboard.mjs <admin-url> <token> <screenshot-path>');
  process.exit(2);
}

const SCRIPT_TEXT = '<script>alert(1)</script>';
const MARKUP_TEXT = '<img src=x onerror=alert(2)>';

const checks = [];
function check(what, ok, detail = '') {
  checks.push(what);
  if (!ok) throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  console.log(`ok - ${what}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'strangler-dashboard-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const dialogs = [];
const pageErrors = [];
const consoleErrors = [];
let page;
let failed = false;
try {
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on('dialog', async (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    // The 401 and 409 this script provokes are logged as failed loads: expected, not errors.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      consoleErrors.push(message.text());
    }
  });

  const response = await page.goto(`${adminUrl}/`, { waitUntil: 'load' });
  check('GET / answers the page', response && response.status() === 200, `status ${response && response.status()}`);
  check('the page has a clear title', (await page.title()).includes('strangler'));

  // Routes, with their modes.
  const row = (id) => page.locator(`#routes-body tr[data-route="${id}"]`);
  await row('catalog').waitFor();
  const ids = await page.locator('#routes-body tr').evaluateAll((rows) => rows.map((r) => r.dataset.route));
  check('every route is listed', ['catalog', 'greeting', 'health', 'feeds', 'currency'].every((id) => ids.includes(id)), ids.join(','));
  const mode = (id) => row(id).locator('.mode-cell .badge').textContent();
  check('catalog shows its mode', (await mode('catalog')) === 'shadow', await mode('catalog'));
  check('feeds shows its canary share', (await mode('feeds')) === 'canary 25%', await mode('feeds'));
  check('health shows its mode', (await mode('health')) === 'legacy', await mode('health'));
  await page.waitForFunction(() => {
    const cell = document.querySelector('#routes-body tr[data-route="catalog"] td:nth-child(5) .big');
    return cell && cell.textContent.trim().endsWith('%');
  });
  const rate = await row('catalog').locator('td:nth-child(5) .big').textContent();
  check('catalog shows a regression rate above zero', parseFloat(rate) > 0, rate);

  // A regression, its pointer and both values.
  const regression = page.locator('.diff[data-verdict="regression"]', { hasText: '/body/price_cents' }).first();
  await regression.waitFor();
  const pointerRow = regression.locator('tr.is-regression', { hasText: '/body/price_cents' });
  const legacyValue = (await pointerRow.locator('.legacy-value').textContent()).trim();
  const candidateValue = (await pointerRow.locator('.candidate-value').textContent()).trim();
  check('the regression shows legacy vs candidate values', Number(candidateValue) === Number(legacyValue) + 1, `${legacyValue} vs ${candidateValue}`);
  check('the differing part is highlighted', (await pointerRow.locator('mark').count()) === 2);

  // Markup from traffic is text.
  const scriptPath = page.locator('.diff-path', { hasText: SCRIPT_TEXT }).first();
  await scriptPath.waitFor();
  check('a <script> in a path is shown literally', (await scriptPath.textContent()) === `/api/products/${SCRIPT_TEXT}`, await scriptPath.textContent());
  const markup = page.locator('.candidate-value', { hasText: MARKUP_TEXT }).first();
  await markup.waitFor();
  check('markup in a diff value is shown literally', (await markup.textContent()).includes(MARKUP_TEXT));
  const injected = await page.evaluate(() => ({
    scripts: document.querySelectorAll('main script, dialog script').length,
    images: document.querySelectorAll('main img, dialog img').length,
  }));
  check('no element was made from traffic', injected.scripts === 0 && injected.images === 0, JSON.stringify(injected));

  // Flip `health` to shadow through the page: a wrong token first, then the right one.
  await row('health').locator('button[data-mode="shadow"]').click();
  const flipDialog = page.locator('#flip-dialog');
  await flipDialog.waitFor({ state: 'visible' });
  check('the flip asks for the token', await page.locator('#flip-token').isVisible());
  await page.fill('#flip-token', 'not-the-token');
  await page.fill('#flip-reason', 'browser test');
  await page.click('#flip-apply');
  await page.locator('#flip-error', { hasText: 'missing or wrong bearer token' }).waitFor();
  check('a 401 shows the server\'s error text', true);
  await page.fill('#flip-token', token);
  await page.click('#flip-apply');
  await flipDialog.waitFor({ state: 'hidden' });
  await page.waitForFunction(() => {
    const badge = document.querySelector('#routes-body tr[data-route="health"] .mode-cell .badge');
    return badge && badge.textContent === 'shadow';
  });
  check('the flipped route shows its new mode', (await mode('health')) === 'shadow');
  const kept = await page.evaluate(() => sessionStorage.getItem('strangler.admin-token'));
  check('the token is kept for the tab', kept === token);

  // A refused transition shows the server's reason, without asking for the token again.
  await row('catalog').locator('button[data-mode="retired"]').click();
  await flipDialog.waitFor({ state: 'visible' });
  check('the token is asked once', !(await page.locator('#flip-token').isVisible()));
  await page.click('#flip-apply');
  await page.locator('#flip-error', { hasText: '409' }).waitFor();
  const refusal = await page.locator('#flip-error').textContent();
  check('a 409 shows the server\'s error text', refusal.includes('force'), refusal);
  check('a refused flip offers force', await page.locator('#force-field').isVisible());
  await page.click('#flip-cancel');
  await flipDialog.waitFor({ state: 'hidden' });
  check('catalog kept its mode', (await mode('catalog')) === 'shadow');

  // Trends draw once two samples are in (one per 2 s poll).
  await page.locator('#chart-regression svg polyline').waitFor({ state: 'attached', timeout: 30_000 });
  await page.locator('#chart-latency svg polyline').first().waitFor({ state: 'attached' });
  check('the trend charts draw', true);
  await page.waitForTimeout(6_000); // a few more samples, for a readable screenshot

  const overflow = await page.evaluate(() => {
    const wrap = document.querySelector('#routes-panel .table-wrap');
    const columns = [...wrap.querySelectorAll('thead th')].map((th) => `${th.textContent.trim()} ${Math.round(th.getBoundingClientRect().width)}`);
    const table = wrap.querySelector('table');
    table.style.width = 'min-content';
    const spare = wrap.clientWidth - table.getBoundingClientRect().width;
    table.style.width = '';
    return { by: Math.round(-spare), columns: columns.join(', ') };
  });
  check(`the routes table fits a 1440 px window (${-overflow.by} px to spare)`, overflow.by <= 0, `${overflow.by} px too wide (${overflow.columns})`);
  check('no alert, confirm or prompt fired', dialogs.length === 0, dialogs.join(' | '));
  check('no script error', pageErrors.length === 0, pageErrors.join(' | '));
  check('no console error (such as a CSP violation)', consoleErrors.length === 0, consoleErrors.join(' | '));
} catch (error) {
  failed = true;
  console.error(`not ok - ${error && error.message ? error.message : error}`);
} finally {
  if (page) {
    await page.screenshot({ path: screenshotPath, fullPage: true }).catch((e) => console.error(`screenshot: ${e}`));
  }
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`browser checks: ${checks.length - (failed ? 1 : 0)} held${failed ? ', 1 did not' : ''}`);
process.exit(failed ? 1 : 0);
