// Drives Warren's management UI in Debian's chromium (playwright-core, headless, no sandbox):
// log in, declare a queue with a message TTL through the form, publish and get a message, watch
// the queue's and the overview's rate figures and charts move, delete the queue, log out; a
// screenshot of every page.
// Usage: node run.mjs --url http://127.0.0.1:15672/ --out DIR [--user guest --pass guest]
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' }, out: { type: 'string', default: 'artifacts' },
    user: { type: 'string', default: 'guest' }, pass: { type: 'string', default: 'guest' },
  },
});
mkdirSync(opt.out, { recursive: true });
const base = opt.url.replace(/\/$/, '');
const queue = 'ui-ttl-queue';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'],
});
const step = (s) => console.log('[ui] ' + s);
let failed = false;
try {
  // Refresh each second so the test sees rates move without waiting 5 s per point.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => { console.error('page error: ' + e.message); failed = true; });
  const shot = (name) => page.screenshot({ path: `${opt.out}/${name}.png`, fullPage: true });
  const logIn = async (p) => {
    await p.goto(`${base}/?refresh=1000#/login`);
    await p.fill('#login-user', opt.user);
    await p.fill('#login-pass', opt.pass);
    await p.click('#login-submit');
    await p.waitForSelector('#total-queues');
    await p.waitForSelector(`#who >> text=${opt.user}`);
  };
  // The highest value a LiveChart has drawn for its first series (publish).
  const chartPeak = (p, id) => p.evaluate(
    (canvasId) => JSON.parse(document.getElementById(canvasId)?.dataset.peak || '[0]')[0], id);

  step('login');
  await page.goto(`${base}/?refresh=1000#/login`);
  await page.fill('#login-user', opt.user);
  await page.fill('#login-pass', 'wrong-password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-msg.error');
  await shot('login-failed');
  await logIn(page);
  if (await page.inputValue('#refresh-select') !== '1000') throw new Error('refresh selector does not show 1 s');

  step('declare a queue with a TTL through the form');
  await page.click('#tab-queues');
  await page.fill('#queue-name', queue);
  await page.selectOption('#queue-durable', 'false');
  await page.fill('#arg-x-message-ttl', '60000');
  await page.click('#add-queue-submit');
  await page.waitForSelector('#add-queue-msg.ok');
  await page.waitForSelector(`#queues-table >> text=${queue}`);
  await shot('queues');
  const listed = await page.textContent('#queues-table');
  if (!listed.includes('message-ttl')) throw new Error('the queue list does not show the TTL argument');

  step('publish through the queue page');
  await page.click(`#queues-table >> text=${queue}`);
  await page.waitForSelector('#queue-details');
  const details = await page.textContent('#queue-details');
  if (!details.includes('"x-message-ttl":60000')) throw new Error('queue details lack the TTL: ' + details);
  // Publishes until the page shows a publish rate above 0 (rates are per sample interval: they
  // show while messages flow).
  const publishOne = async (i) => {
    await page.fill('#queue-publish textarea[name=payload]', `hello from the browser ${i}`);
    await page.click('#queue-publish button');
    await page.waitForSelector('#queue-publish-msg.ok');
    await page.evaluate(() => { document.getElementById('queue-publish-msg').className = ''; });
  };
  step('the rate figures move');
  let published = 0;
  const rateShown = () => page.evaluate(
    () => parseFloat(document.getElementById('queue-rate-publish')?.textContent) > 0);
  for (; published < 200 && !(published >= 3 && await rateShown()); published++) {
    await publishOne(published);
    await page.waitForTimeout(100);
  }
  if (!(await rateShown())) throw new Error('the publish rate never rose above 0');
  await page.waitForFunction((n) => document.getElementById('queue-published')?.textContent === String(n),
    published, { timeout: 30000 });
  if (!(await chartPeak(page, 'chart-queue-rates') > 0)) throw new Error('the queue rate chart stayed at 0');
  await shot('queue-detail');

  step('get a message');
  await page.selectOption('#get-form select[name=ackmode]', 'ack_requeue_false');
  await page.click('#get-submit');
  const payload = await page.textContent('[data-testid=payload]');
  if (payload !== 'hello from the browser 0') throw new Error('got payload ' + JSON.stringify(payload));

  step('overview rate moves while a second tab publishes through the default exchange');
  await page.click('#tab-overview');
  await page.waitForSelector('#rate-publish');
  const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  other.on('pageerror', (e) => { console.error('page error (second tab): ' + e.message); failed = true; });
  await logIn(other);  // sessionStorage is per tab: this one logs in on its own
  await other.goto(`${base}/?refresh=1000#/exchanges/%2F/amq.default`);
  await other.waitForSelector('#exchange-details');
  await other.fill('#exchange-publish input[name=routing_key]', queue);
  const overviewRate = () => page.evaluate(
    () => parseFloat(document.getElementById('rate-publish')?.textContent) > 0);
  let more = 0;
  for (; more < 200 && !(more >= 3 && await overviewRate()); more++) {
    await other.fill('#exchange-publish textarea[name=payload]', `from the exchange page ${more}`);
    await other.click('#exchange-publish button');
    await other.waitForSelector('#exchange-publish-msg.ok');
    await other.evaluate(() => { document.getElementById('exchange-publish-msg').className = ''; });
    await other.waitForTimeout(100);
  }
  await other.close();
  if (!(await overviewRate())) throw new Error('the overview publish rate never rose above 0');
  if (!(await chartPeak(page, 'chart-rates') > 0)) throw new Error('the overview rate chart stayed at 0');
  // The queued-messages chart shows the messages left in the queue.
  await page.waitForFunction((n) => Number(document.getElementById('total-ready')?.textContent) === n,
    published + more - 1, { timeout: 30000 });
  await page.waitForFunction(() => JSON.parse(document.getElementById('chart-queued')?.dataset.peak || '[0]')[0] > 0,
    null, { timeout: 30000 });
  await page.waitForTimeout(1500);  // a few chart points
  await shot('overview');

  for (const tab of ['connections', 'channels', 'exchanges', 'admin']) {
    step(tab);
    await page.click(`#tab-${tab}`);
    await page.waitForSelector(`#${tab === 'admin' ? 'users' : tab}-table`);
    await shot(tab);
  }

  step('delete the queue');
  await page.goto(`${base}/?refresh=1000#/queues/%2F/${queue}`);
  await page.waitForSelector('#queue-details');
  await page.click('#delete-queue');
  await page.waitForSelector('#queues-table');
  await page.waitForTimeout(1200);
  if ((await page.textContent('#queues-table')).includes(queue)) throw new Error('queue still listed');

  step('log out');
  await page.click('#logout');
  await page.waitForSelector('#login-form');
  const stored = await page.evaluate(() => sessionStorage.getItem('warren-auth'));
  if (stored !== null) throw new Error('credentials kept after logout');
  step('done');
} catch (e) {
  console.error('[ui] FAILED: ' + (e.stack || e));
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
