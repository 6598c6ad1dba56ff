// End to end in a real browser (playwright-core driving Debian's chromium, headless): an annotator signs in
// with a token, labels pairs with the keyboard, undoes one, and the export holds exactly what was chosen;
// responses holding <script> or <img onerror> show as text and run nothing; bidi overrides and zero-width
// characters show as visible U+ marks with a warning banner, which a plain pair next does not have.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { FeedbackDB } from '../../src/label/db.js';
import { exportPreferences } from '../../src/label/export.js';
import { type LabelServer, startServer } from '../../src/label/server.js';
import { CHROMIUM_ARGS, cleanTmp, requireChromium, tmp } from './helpers.js';

const XSS_SCRIPT = '<script>window.__pwned = "script"</script> plain words';
const XSS_IMG = 'look: <img src=x onerror="window.__pwned = \'img\'"> & <b>bold?</b>';

let store: FeedbackDB;
let server: LabelServer;
let context: BrowserContext;
let token: string;

before(async () => {
  const executablePath = requireChromium();
  const dir = tmp();
  store = FeedbackDB.open(join(dir, 'fb.sqlite'));
  token = store.addAnnotator('erin').token;
  store.openRound({
    source: 'pairs',
    input: 'pairs.jsonl',
    pairs: [
      { prompt: 'Which is safer? <script>window.__pwned = "prompt"</script>', responseA: XSS_SCRIPT, responseB: XSS_IMG },
      {
        prompt: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Name a colour.' },
        ],
        responseA: 'Blue.',
        responseB: 'The colour I would name is blue, the colour of the sky.',
      },
      { prompt: 'What is 2 + 2?', responseA: '4', responseB: 'Five, probably.\nOr maybe four.' },
      { prompt: 'Say hi.', responseA: 'Hi!', responseB: 'Hello there.' },
    ].map((p, k) => ({ line: k + 1, id: null, sourceA: null, sourceB: null, ...p })),
  });
  server = await startServer({ store, port: 0 });
  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), { executablePath, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await context?.close();
  await server?.close();
  store?.close();
  cleanTmp();
});

interface Shown {
  assignment: string;
  left: string;
  right: string;
  prompt: string;
}

async function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => ({
    assignment: document.getElementById('work')!.dataset.assignment!,
    left: document.getElementById('left')!.textContent!,
    right: document.getElementById('right')!.textContent!,
    prompt: document.getElementById('prompt')!.textContent!,
  }));
}

/** Waits until the page shows another pair than `prev` (or the empty state when `empty`). */
async function nextShown(page: Page, prev: string, empty = false): Promise<void> {
  if (empty) await page.waitForSelector('#empty:not(.hidden)');
  else await page.waitForFunction((p) => document.getElementById('work')!.dataset.assignment !== p && !document.getElementById('work')!.classList.contains('hidden'), prev);
}

test('sign in with a token, label with the keyboard, undo one: the export holds exactly what was chosen', { timeout: 90_000 }, async () => {
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // the sign-in form comes with status 401, which chromium notes on the console; anything else is a problem
    if (m.type() === 'error' && !/status of 401 \(Unauthorized\)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  // signed out: only the sign-in form
  await page.goto(server.url);
  assert.equal(await page.locator('#work').count(), 0);
  await page.fill('#token', 'ak_wrong');
  await page.press('#token', 'Enter');
  await page.waitForSelector('text=That token is not valid.');
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#work:not(.hidden)');
  assert.match((await page.textContent('header'))!, /erin/);

  // pair 1 holds the hostile texts: they are shown verbatim, as text
  const p1 = await shown(page);
  assert.equal(p1.prompt, 'Which is safer? <script>window.__pwned = "prompt"</script>');
  assert.deepEqual(new Set([p1.left, p1.right]), new Set([XSS_SCRIPT, XSS_IMG]));
  assert.equal(await page.locator('#prompt script, #left script, #right script, #left img, #right img, #left b, #right b').count(), 0);
  if (process.env.ALIGNKIT_LABEL_SCREENSHOT) await page.screenshot({ path: process.env.ALIGNKIT_LABEL_SCREENSHOT, fullPage: true });
  await page.keyboard.press('1');
  assert.equal(await page.getAttribute('button[data-side="left"]', 'aria-pressed'), 'true');
  await page.keyboard.press('Enter');
  await nextShown(page, p1.assignment);

  // pair 2: B, with a reason typed in the field (digits and "u" there are text, not shortcuts)
  const p2 = await shown(page);
  assert.match(p2.prompt, /system.*Be brief\..*user.*Name a colour\./s);
  await page.keyboard.press('2');
  await page.click('#reason');
  await page.keyboard.type('1 word is truer');
  assert.equal(await page.getAttribute('button[data-side="right"]', 'aria-pressed'), 'true', 'typing did not change the choice');
  await page.keyboard.press('Enter');
  await nextShown(page, p2.assignment);
  assert.equal(await page.inputValue('#reason'), '', 'the reason field is cleared for the next pair');

  // pair 3: A by mistake, undo (U), it comes back with A selected; choose B instead
  const p3 = await shown(page);
  await page.keyboard.press('1');
  await page.keyboard.press('Enter');
  await nextShown(page, p3.assignment);
  const p4 = await shown(page);
  await page.keyboard.press('u');
  await page.waitForFunction((a) => document.getElementById('work')!.dataset.assignment === a, p3.assignment);
  assert.equal(await page.getAttribute('button[data-side="left"]', 'aria-pressed'), 'true', 'the undone label is preselected');
  assert.deepEqual(await shown(page), p3);
  await page.keyboard.press('2');
  await page.keyboard.press('Enter');
  await nextShown(page, p3.assignment);

  // pair 4 (back on screen): tie, by click this time
  assert.deepEqual(await shown(page), p4);
  await page.click('button[data-side="tie"]');
  await page.click('#submit');
  await nextShown(page, p4.assignment, true);
  assert.match((await page.textContent('#empty'))!, /Nothing left to label/);
  assert.match((await page.textContent('#progress'))!, /Round 1 · 4 labeled · 0 ready/);

  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned ?? null), null, 'no injected code ran');
  assert.deepEqual(problems, []);

  const out = join(tmp(), 'prefs.jsonl');
  // one row per label; the file has one format: the text prompts are written as user messages, as the colour question is a conversation
  assert.deepEqual(exportPreferences(store, out, undefined, 'all'), { written: 3, ties: 1, bothBad: 0, identical: 0, disagreements: 0, converted: 3, hidden: 0, simulated: 0 });
  const rows = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((r) => [r.chosen, r.rejected, r.reason, r.annotator]),
    [
      [[{ role: 'assistant', content: p1.left }], [{ role: 'assistant', content: p1.right }], null, 'erin'],
      [[{ role: 'assistant', content: p2.right }], [{ role: 'assistant', content: p2.left }], '1 word is truer', 'erin'],
      [[{ role: 'assistant', content: p3.right }], [{ role: 'assistant', content: p3.left }], null, 'erin'],
    ],
  );

  // signing out drops the cookie: the page and the API are closed again
  await page.click('text=Sign out');
  await page.waitForSelector('#token');
  assert.equal(await page.evaluate(async () => (await fetch('/api/next')).status), 401);
  await page.close();
});

test('hidden characters: a bidi override and zero-width characters show as marks with a warning; a plain pair next shows none', { timeout: 60_000 }, async () => {
  const dir = tmp();
  const s = FeedbackDB.open(join(dir, 'hidden.sqlite'));
  const t = s.addAnnotator('hana').token;
  const BIDI = 'The answer is \u202Etcerroc ton\u202C.';
  const ZW = 'pay\u200Bpal.com is\u200D safe\uFEFF';
  s.openRound({
    source: 'pairs',
    input: 'hidden.jsonl',
    pairs: [
      { prompt: 'Is it correct?', responseA: BIDI, responseB: 'Yes.' },
      { prompt: 'Which site?', responseA: 'example.com', responseB: ZW },
      { prompt: 'Say hi.', responseA: 'Hi!', responseB: 'Hello there.' },
    ].map((p, k) => ({ line: k + 1, id: null, sourceA: null, sourceB: null, ...p })),
  });
  const srv = await startServer({ store: s, port: 0 });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  try {
    await page.goto(srv.url);
    await page.fill('#token', t);
    await page.press('#token', 'Enter');
    await page.waitForSelector('#work:not(.hidden)');

    /** What the page shows of one response: its text and the marks in it (visible ones only). */
    const side = async (id: 'left' | 'right') => ({
      text: (await page.textContent(`#${id}`))!,
      marks: await page.locator(`#${id} .hidden-char`).evaluateAll((els) => els.filter((e) => (e as HTMLElement).offsetWidth > 0 && (e as HTMLElement).offsetHeight > 0).map((e) => e.textContent)),
    });
    const responseWith = async (needle: string) => {
      const l = await side('left'),
        r = await side('right');
      return l.text.includes(needle) ? l : r;
    };

    // pair 1: the bidi override is a visible U+202E mark (the character itself is not in the page's text), with the banner
    let p = await shown(page);
    assert.equal(await page.isVisible('#hidden-warning'), true, 'the warning banner is shown');
    assert.match((await page.textContent('#hidden-warning'))!, /invisible or text-direction characters/);
    const bidi = await responseWith('The answer is');
    assert.deepEqual(bidi.marks, ['U+202E', 'U+202C']);
    assert.equal(bidi.text, 'The answer is U+202Etcerroc tonU+202C.');
    assert.equal(/[\u202a-\u202e]/.test(p.left + p.right), false, 'no raw bidi control reaches the page');
    assert.deepEqual((await responseWith('Yes.')).marks, []);
    await page.keyboard.press('4');
    await page.keyboard.press('Enter');
    await nextShown(page, p.assignment);

    // pair 2: zero-width space, zero-width joiner and a byte-order mark, each a mark; the banner stays
    p = await shown(page);
    assert.equal(await page.isVisible('#hidden-warning'), true);
    const zw = await responseWith('pay');
    assert.deepEqual(zw.marks, ['U+200B', 'U+200D', 'U+FEFF']);
    assert.equal(zw.text, 'payU+200Bpal.com isU+200D safeU+FEFF');
    await page.keyboard.press('1');
    await page.keyboard.press('Enter');
    await nextShown(page, p.assignment);

    // pair 3: plain text, no marks and no banner
    p = await shown(page);
    assert.deepEqual(new Set([p.left, p.right]), new Set(['Hi!', 'Hello there.']));
    assert.equal(await page.isVisible('#hidden-warning'), false, 'no warning for a plain pair');
    assert.equal(await page.locator('#prompt .hidden-char, #left .hidden-char, #right .hidden-char').count(), 0);
    assert.deepEqual(problems, []);

    // the export counts the written pair that holds hidden characters (the both-bad one is not written)
    const out = join(dir, 'prefs.jsonl');
    assert.deepEqual(exportPreferences(s, out), { written: 1, ties: 0, bothBad: 1, identical: 0, disagreements: 0, converted: 0, hidden: 1, simulated: 0 });
    const [row] = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { chosen: string; rejected: string });
    assert.ok(row!.chosen === ZW || row!.rejected === ZW, 'the export keeps the text exactly as stored');
  } finally {
    await page.close();
    await srv.close();
    s.close();
  }
});
