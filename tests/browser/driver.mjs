// A thin bridge from a Rust test to Debian's Chromium through playwright-core: one JSON
// command per line on stdin, one JSON answer per line on stdout. The test decides what to
// assert; this only opens pages, reads text and reports what the page complained about.
//
//   node driver.mjs <chromium> <fresh user-data-dir>
//   {"cmd":"open","url":"http://127.0.0.1:9464/#token=…"}  -> {"ok":true,"value":200}
//   {"cmd":"text","selector":"#ready"}                       -> {"ok":true,"value":"ready"}
//   {"cmd":"wait_text","selector":"#ready","text":"ready","timeout_ms":5000}
//   {"cmd":"eval","expr":"location.href"}                    (read-only questions)
//   {"cmd":"problems"}  console errors and warnings, uncaught exceptions, CSP violations
//   {"cmd":"screenshot","path":"/tmp/page.png"}
//   {"cmd":"close"}
//
// Every wait is bounded: by the command's timeout_ms, and the whole run by the test.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [executablePath, userDataDir] = process.argv.slice(2);
if (!executablePath || !userDataDir) {
  console.error('usage: node driver.mjs <chromium> <user-data-dir>');
  process.exit(2);
}

// The flags Chromium needs as root on a machine without a network: no sandbox (root), and
// nothing that phones home (those connections are refused here, many at a time).
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  chromiumSandbox: false,
  timeout: 30_000,
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const problems = [];
// Violations are also reported here, not only as console text: the listener is installed by
// the browser before the page's own script (through the DevTools protocol, not the page).
await context.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
  });
});
const page = context.pages()[0] ?? (await context.newPage());
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') {
    problems.push({ kind: `console.${m.type()}`, text: m.text(), url: m.location()?.url ?? '' });
  }
});
page.on('pageerror', (e) => problems.push({ kind: 'exception', text: String(e), url: page.url() }));
page.on('requestfailed', (r) =>
  problems.push({ kind: 'request-failed', text: r.failure()?.errorText ?? '', url: r.url() }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function text(selector, timeout = 1_000) {
  return (await page.locator(selector).first().textContent({ timeout }))?.trim() ?? null;
}

const commands = {
  async open({ url }) {
    const response = await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
    return response?.status() ?? null;
  },
  async text({ selector }) {
    return text(selector);
  },
  async wait_text({ selector, text: want, timeout_ms }) {
    const deadline = Date.now() + (timeout_ms ?? 5_000);
    let seen = null;
    for (;;) {
      try {
        seen = await text(selector, 200);
      } catch {
        seen = null; // not on the page yet
      }
      if (seen === want) return seen;
      if (Date.now() > deadline) {
        throw new Error(`${selector}: waited ${timeout_ms} ms for ${JSON.stringify(want)}, last saw ${JSON.stringify(seen)}`);
      }
      await sleep(100);
    }
  },
  async eval({ expr }) {
    return page.evaluate(expr);
  },
  async problems() {
    return problems;
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return path;
  },
};

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    if (command.cmd === 'close') break;
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    answer = { ok: true, value: await run(command) };
  } catch (e) {
    answer = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await context.close();
process.exit(0);
