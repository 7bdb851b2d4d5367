// The web UI's journey in a real browser (README "Web UI"): Debian's chromium, headless, driven
// by playwright-core (tests/peers), against the stack tests/integration/test_ui.py started.
// Every page is screenshotted into ARTIFACTS and checked with axe-core: a serious or critical
// violation fails the journey, as does any console error (a CSP refusal among them).
//
// Environment: GW_URL, SIM_URL, TOKEN (a JWT of the user), ARTIFACTS (a directory), PEERS
// (tests/peers), DEMO_WORKFLOW (examples/demo-workflow.json), PROVIDER, PRICING (the system
// prompt's words by which the model simulator recognises the Agent below), REFERENCE_WORKFLOW
// (the builder's proposal-generation.json).
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  if (!process.env[k]) throw new Error(`journey: ${k} is not set`);
  return process.env[k];
};
const GW = env('GW_URL');
const SIM = env('SIM_URL');
const TOKEN = env('TOKEN');
const ART = env('ARTIFACTS');
const PROVIDER = env('PROVIDER');
const require = createRequire(join(env('PEERS'), 'package.json'));
const { chromium } = require('playwright-core');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const DEMO = JSON.parse(readFileSync(env('DEMO_WORKFLOW'), 'utf8'));
const REFERENCE = JSON.parse(readFileSync(env('REFERENCE_WORKFLOW'), 'utf8'));

// Start -> Agent (a calculator call, then a JSON answer: test_ui.py scripts the model) -> Code
// (numpy over an input and the Agent's keys) -> End.
const PRICED = {
  title: 'Priced order',
  nodes: [
    { id: 'start', type: 'Start', name: 'Order',
      config: { inputVariables: [{ name: 'quantity', type: 'number', required: true }] } },
    { id: 'agent', type: 'Agent', name: 'Pricing assistant',
      config: { prompt: env('PRICING') + '. Work out the subtotal with the calculator.',
                model: { provider: 'anthropic', modelName: 'claude-sonnet-4-5' },
                tools: ['calculator'], maxIterations: 4, temperature: 0 } },
    { id: 'price', type: 'Code', name: 'Final price',
      config: { language: 'python', packages: ['numpy'],
                code: 'import numpy as np\n' +
                      'final_price = float(np.round(subtotal * (1 - discount_rate), 2))\n' +
                      'unit_price = final_price / quantity\n' +
                      'print(f"{quantity} units: {final_price}")\n' } },
    { id: 'end', type: 'End', name: 'Done',
      config: { outputVariables: [{ name: 'final_price', value: '{{vars.final_price}}' }] } },
  ],
  connections: [{ id: 'c1', from: 'start', to: 'agent' }, { id: 'c2', from: 'agent', to: 'price' },
                { id: 'c3', from: 'price', to: 'end' }],
};

const problems = [];
const step = (s) => console.log('journey: ' + s);

async function gw(method, path, body) {
  const res = await fetch(GW + path, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

// axe-core on the page as it is: evaluated over the DevTools protocol, so the page's CSP (which
// refuses any script not its own) is not loosened for it.
async function check(page, name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.screenshot({ path: join(ART, name + '.png'), fullPage: true });
  await page.evaluate(AXE + '\n;0');
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad)
    problems.push(`axe on ${name}: ${v.impact} ${v.id} (${v.help}): ` +
                  v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | '));
  step(`${name}: screenshot, axe ${bad.length ? bad.length + ' serious/critical' : 'clean'}`);
}

const runStatus = (page) => page.locator('#run-status').getAttribute('data-status');

async function waitRun(page, want, ms = 45000) {
  await page.waitForFunction((w) => {
    const s = document.querySelector('#run-status');
    return s && w.includes(s.dataset.status);
  }, want, { timeout: ms });
  return runStatus(page);
}

async function fillInputs(page) {
  await page.fill('#in-message', 'hello from the browser');
  await page.fill('#in-a', '2');
  await page.fill('#in-b', '40');
}

const profile = mkdtempSync(join(tmpdir(), 'toolgate-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 900 },
});
let failed = false;
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(20000);
  page.on('console', (m) => {
    // Chromium logs every 4xx answer; the journey provokes a 422 and a 409 on purpose. A missing
    // file (404) or anything else, a CSP refusal among them, is a problem.
    if (m.type() === 'error' && !/status of (409|422)\b/.test(m.text()))
      problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin !== new URL(GW).origin && u.origin !== new URL(SIM).origin)
      problems.push('a request left the stack: ' + r.url());
  });

  // 1. Sign in with a pasted token.
  await page.goto(GW + '/');
  await page.getByRole('heading', { name: 'Sign in to toolgate' }).waitFor();
  await check(page, '01-signin');
  await page.fill('#cred', TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Integrations' }).waitFor();
  await check(page, '02-integrations');

  // 2. Connect the provider through the simulator's hosted page; back where we were.
  await page.getByRole('button', { name: `Connect ${PROVIDER}` }).click();
  await page.waitForURL(GW + '/integrations');
  await page.locator('#oauth-notice', { hasText: 'connected' }).waitFor();
  await page.getByRole('button', { name: `Disconnect ${PROVIDER}` }).waitFor();
  await check(page, '03-integrations-connected');

  // 3. The demo workflow: first with a broken node (the 422 shown on it), then as it is.
  await page.getByRole('link', { name: 'Workflows' }).click();
  await page.getByRole('heading', { name: 'Workflows' }).waitFor();
  await check(page, '04-workflows');
  await page.getByRole('link', { name: 'New workflow' }).click();
  const broken = JSON.parse(JSON.stringify(DEMO));
  delete broken.nodes.find((n) => n.id === 'echo').config.tool;
  await page.fill('#wf-name', 'demo');
  await page.fill('#wf-json', JSON.stringify(broken, null, 2));
  await page.getByRole('button', { name: 'Create workflow' }).click();
  await page.locator('#wf-errors', { hasText: 'node echo' }).waitFor();
  await page.locator('g.node.has-error[data-node="echo"]').waitFor();
  await check(page, '05-workflow-422');
  await page.fill('#wf-json', JSON.stringify(DEMO, null, 2));
  await page.getByRole('button', { name: 'Create workflow' }).click();
  await page.waitForURL(/\/workflows\/wf_/);
  const wfUrl = page.url();
  await page.getByRole('heading', { name: 'Run' }).waitFor();

  // 4. Run it and watch it succeed live.
  await fillInputs(page);
  await check(page, '06-workflow');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/runs\/run_/);
  let st = await waitRun(page, ['succeeded', 'failed', 'attention']);
  if (st !== 'succeeded') throw new Error('the first run ended ' + st);
  await page.locator('g.node[data-node="sum"][data-status="success"]').waitFor();
  await page.locator('pre.json', { hasText: 'The sum of 2 and 40 is 42.' }).first().waitFor();
  const live = await page.locator('ol.events li').count();
  step(`first run succeeded (${live} events seen live over SSE)`);
  await check(page, '07-run-succeeded');

  // 5. The account expires at "Composio": Run again -> 409 dialog -> Reconnect -> Run again.
  const dbg = await gw('GET', '/api/mcp/auth/debug');
  const ca = dbg.body.connections.find((c) => c.provider === PROVIDER).composio_account_id;
  const patch = await fetch(`${SIM}/_sim/accounts/${ca}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ status: 'EXPIRED', status_reason: 'OAuth refresh token expired' }),
  });
  if (patch.status !== 200) throw new Error('the simulator did not expire the account: ' + patch.status);
  await page.goto(wfUrl);
  await page.getByRole('heading', { name: 'Run' }).waitFor();
  if ((await page.inputValue('#in-message')) !== 'hello from the browser')
    throw new Error('the run form lost its inputs');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.locator('text=connected_account_status=EXPIRED').waitFor();
  await check(page, '08-409-dialog');
  await dialog.getByRole('button', { name: `Reconnect ${PROVIDER}` }).click();
  await page.waitForURL(wfUrl);
  await page.locator('#oauth-notice', { hasText: 'connected' }).waitFor();
  if ((await page.inputValue('#in-b')) !== '40') throw new Error('the inputs were not kept across the OAuth round trip');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/runs\/run_/);
  st = await waitRun(page, ['succeeded', 'failed', 'attention']);
  if (st !== 'succeeded') throw new Error('the run after reconnecting ended ' + st);
  step('after the 409 and a reconnect, Run again succeeded');

  // 6. A run that stops at a HITL node, approved from Reviews.
  const hitl = await gw('POST', '/api/workflows', {
    name: 'approval',
    definition: {
      title: 'Approval',
      nodes: [
        { id: 'start', type: 'Start', name: 'Start', config: {} },
        { id: 'review', type: 'HITL', name: 'Approve it',
          config: { reviewTitle: 'Ship the demo?', message: 'The demo is ready to go out.',
                    priority: 'high', allowedDecisions: ['approve', 'reject'] } },
        { id: 'end', type: 'End', name: 'End',
          config: { outputVariables: [{ name: 'decision', value: '{{nodes.review.output.decision}}' }] } },
      ],
      connections: [{ id: 'c1', from: 'start', to: 'review' }, { id: 'c2', from: 'review', to: 'end' }],
    },
  });
  if (hitl.status !== 201) throw new Error('HITL workflow: ' + JSON.stringify(hitl));
  await page.goto(GW + '/workflows/' + hitl.body.id);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/runs\/run_/);
  const hitlRun = page.url();
  await waitRun(page, ['waiting']);
  await page.locator('g.node[data-node="review"][data-status="waiting"]').waitFor();
  await check(page, '09-run-waiting');
  await page.getByRole('link', { name: 'Reviews' }).first().click();
  await page.getByRole('heading', { name: 'Ship the demo?' }).waitFor();
  await page.getByLabel('Comment (optional)').fill('looks good');
  await check(page, '10-reviews');
  await page.getByRole('button', { name: 'approve' }).click();
  await page.locator('text=Nothing waits for a decision.').waitFor();
  await page.goto(hitlRun);
  st = await waitRun(page, ['succeeded', 'failed', 'attention']);
  if (st !== 'succeeded') throw new Error('the approved run ended ' + st);
  await page.locator('pre.json', { hasText: 'approve' }).first().waitFor();
  step('the HITL run was approved from Reviews and succeeded');

  // 7. An Agent and a Code node, created in the editor and run from the form: the run page shows
  //    the Agent's answer and keys, its calculator call, the tokens, the Code node's stdout and names.
  await page.goto(GW + '/workflows/new');
  await page.fill('#wf-name', 'priced order');
  await page.fill('#wf-json', JSON.stringify(PRICED, null, 2));
  await page.getByRole('button', { name: 'Create workflow' }).click();
  await page.waitForURL(/\/workflows\/wf_/);
  await page.fill('#in-quantity', '8');
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/runs\/run_/);
  st = await waitRun(page, ['succeeded', 'failed', 'attention']);
  if (st !== 'succeeded') {
    const r = await gw('GET', new URL(page.url()).pathname.replace('/runs/', '/api/runs/'));
    throw new Error('the Agent/Code run ended ' + st + ': ' + JSON.stringify(r.body));
  }
  const agentOut = page.locator('section.node-output[data-node="agent"]');
  await agentOut.locator('pre.text', { hasText: '"discount_rate": 0.1' }).waitFor();
  await agentOut.locator('dl.names dt', { hasText: 'subtotal' }).waitFor();
  await agentOut.locator('dl.names dd', { hasText: 'bulk order discount' }).waitFor();
  await agentOut.locator('h3', { hasText: 'tokens 660 in · 55 out' }).waitFor();
  const codeOut = page.locator('section.node-output[data-node="price"]');
  await codeOut.locator('pre.text', { hasText: '8 units: 90.0' }).waitFor();
  await codeOut.locator('dl.names dt', { hasText: 'final_price' }).waitFor();
  await codeOut.locator('dl.names dd', { hasText: '90' }).first().waitFor();
  await codeOut.locator('dl.names dt', { hasText: 'unit_price' }).waitFor();
  const calc = page.locator('details.exec[data-tool="calculator"]');
  await calc.locator('pre.json', { hasText: '8 * 12.5' }).waitFor();
  await calc.locator('pre.json', { hasText: '100' }).last().waitFor();
  await page.locator('#run-usage', { hasText: '660 in · 55 out' }).waitFor();
  await page.locator('pre.json', { hasText: /"final_price": "?90/ }).first().waitFor();
  // Keyboard: a tool execution folds and unfolds from its summary.
  await calc.locator('summary').focus();
  await page.keyboard.press('Enter');
  if (await calc.evaluate((d) => d.open)) throw new Error('Enter on a summary did not fold it');
  await page.keyboard.press('Enter');
  if (!(await calc.evaluate((d) => d.open))) throw new Error('Enter on a summary did not unfold it');
  step('the Agent/Code run shows the answer, its keys, the calculator call, the tokens, stdout and names');
  await check(page, '11-run-agent-code');

  // 8. The builder's reference workflow through the editor: its graph has every node and edge.
  await page.goto(GW + '/workflows/new');
  await page.fill('#wf-name', 'proposal generation');
  await page.fill('#wf-json', JSON.stringify(REFERENCE, null, 2));
  const editorGraph = page.locator('form.editor figure.graph');
  await editorGraph.locator('g.node').nth(REFERENCE.nodes.length - 1).waitFor();
  await page.getByRole('button', { name: 'Create workflow' }).click();
  await page.waitForURL(/\/workflows\/wf_/);
  const graph = page.locator('figure.graph').first();
  await graph.locator('g.node').nth(REFERENCE.nodes.length - 1).waitFor();
  const drawn = await graph.locator('g.node').evaluateAll((gs) => gs.map((g) => g.dataset.node));
  const edges = await graph.locator('path.edge').count();
  const pairs = new Set(REFERENCE.connections.map((c) => c.from + '>' + c.to));
  const missing = REFERENCE.nodes.map((n) => String(n.id)).filter((id) => !drawn.includes(id));
  if (drawn.length !== REFERENCE.nodes.length || missing.length || edges !== pairs.size)
    throw new Error(`the reference graph: ${drawn.length} nodes (missing ${missing}), ${edges} edges ` +
                    `for ${REFERENCE.nodes.length} nodes and ${pairs.size} connections`);
  const titles = await graph.locator('g.node title').allTextContents();
  for (const n of REFERENCE.nodes)
    if (!titles.some((t) => t.startsWith(n.name + ' (' + n.type + ')')))
      throw new Error(`the reference graph has no box for ${n.name} (${n.type})`);
  step(`the reference workflow's graph: ${drawn.length} nodes, ${edges} edges`);
  await check(page, '12-workflow-reference');

  // 9. The other pages.
  await page.goto(GW + '/runs');
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  await page.selectOption('#f-status', 'succeeded');
  await page.waitForURL(/status=succeeded/);
  await page.locator('tbody tr').first().waitFor();
  await check(page, '13-runs');
  await page.goto(GW + '/credentials');
  await page.fill('#c-name', 'crm');
  await page.fill('#c-token', 'tok-never-shown-again');
  await page.getByRole('button', { name: 'Add credential' }).click();
  await page.getByRole('button', { name: 'Delete crm' }).waitFor();
  if ((await page.content()).includes('tok-never-shown-again')) throw new Error('a credential value was shown back');
  await check(page, '14-credentials');
  await page.goto(GW + '/tools');
  await page.getByRole('cell', { name: 'calculator' }).or(page.getByRole('rowheader', { name: 'calculator' })).first().waitFor();
  await check(page, '15-tools');

  // 10. A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(hitlRun);
  await waitRun(page, ['succeeded']);
  await check(page, '16-run-phone');
  await page.goto(GW + '/integrations');
  await page.getByRole('heading', { name: 'Integrations' }).waitFor();
  await check(page, '17-integrations-phone');
} catch (e) {
  failed = true;
  console.error('journey: FAILED: ' + (e && e.stack ? e.stack : e));
  try {
    const p = ctx.pages()[0];
    if (p) await p.screenshot({ path: join(ART, 'failure.png'), fullPage: true });
  } catch {}
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
for (const p of problems) console.error('journey: ' + p);
console.log(`journey: screenshots in ${ART}`);
process.exit(failed || problems.length ? 1 : 0);
