// The annotator's pages: a sign-in form and the labeling page (prompt, two responses side by side, A / B / tie /
// both bad with an optional reason, undo, progress). Model output is untrusted: the script only ever sets
// textContent, and the Content-Security-Policy lets nothing run but this page's own nonce-tagged script.

import { HIDDEN_CHARS_SOURCE } from './hidden-chars.js';

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f4f5f7}
header{display:flex;align-items:center;gap:16px;padding:10px 24px;background:#fff;border-bottom:1px solid #dde1e6}
header h1{font-size:16px;margin:0;font-weight:600}
header .progress{flex:1;color:#4a5568}
header form{margin:0}
main{max-width:1280px;margin:0 auto;padding:20px 24px 40px}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:#5b6475;margin:0 0 6px}
.box{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 16px;white-space:pre-wrap;overflow-wrap:anywhere}
.prompt{margin-bottom:18px;max-height:30vh;overflow:auto}
.msg+.msg{margin-top:8px}
.role{display:block;font-size:12px;font-weight:600;color:#5b6475}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.response{min-height:140px;max-height:50vh;overflow:auto;border-width:2px}
.response.picked{border-color:#2b6cb0;box-shadow:0 0 0 3px #bee3f8}
.choices{display:flex;flex-wrap:wrap;gap:10px;margin:18px 0 10px}
button{font:inherit;padding:8px 14px;border:1px solid #b8c0cc;border-radius:6px;background:#fff;color:#1d2330;cursor:pointer}
button:hover{background:#edf2f7}
button:disabled{opacity:.5;cursor:default}
button.choice[aria-pressed=true]{background:#2b6cb0;border-color:#2b6cb0;color:#fff}
button.primary{background:#2f855a;border-color:#2f855a;color:#fff}
kbd{font:12px ui-monospace,monospace;border:1px solid #b8c0cc;border-bottom-width:2px;border-radius:4px;padding:0 5px;margin-right:6px;background:#f7fafc;color:#1d2330}
button.choice[aria-pressed=true] kbd,button.primary kbd{background:transparent;color:inherit;border-color:currentColor}
.actions{display:flex;gap:10px;align-items:center}
.actions input{flex:1;font:inherit;padding:8px 10px;border:1px solid #b8c0cc;border-radius:6px}
.status{min-height:22px;margin-top:10px;color:#4a5568}
.status.error{color:#c53030}
.empty{padding:40px;text-align:center;color:#4a5568}
.hidden{display:none}
.hidden-char{font:11px ui-monospace,monospace;color:#9b2c2c;background:#fed7d7;border:1px solid #feb2b2;border-radius:3px;padding:0 3px;margin:0 1px;white-space:nowrap}
.warning{background:#fffaf0;border:1px solid #f6ad55;color:#7b341e;border-radius:6px;padding:8px 12px;margin:0 0 14px}
.card{max-width:420px;margin:12vh auto;background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:24px}
.card input{width:100%;font:inherit;padding:8px 10px;border:1px solid #b8c0cc;border-radius:6px;margin:8px 0 14px}
.card .error{color:#c53030}
@media (max-width:800px){.pair{grid-template-columns:1fr}}
`;

const SCRIPT = `
(() => {
  'use strict';
  const SIDES = ['left', 'right', 'tie', 'both_bad'];
  const $ = (id) => document.getElementById(id);
  const el = {
    progress: $('progress'), work: $('work'), empty: $('empty'), emptyText: $('empty-text'), prompt: $('prompt'),
    left: $('left'), right: $('right'), hiddenWarning: $('hidden-warning'), reason: $('reason'), submit: $('submit'), undo: $('undo'), status: $('status'),
  };
  const st = { item: null, side: null, busy: false, canUndo: false, poll: null };
  const HIDDEN = new RegExp(${JSON.stringify(HIDDEN_CHARS_SOURCE)}, 'gu');
  // writes text into node as text nodes, each hidden character as a visible mark; says whether there was one
  function setText(node, text) {
    node.replaceChildren();
    let at = 0, found = false;
    for (const m of String(text).matchAll(HIDDEN)) {
      found = true;
      if (m.index > at) node.append(document.createTextNode(text.slice(at, m.index)));
      const mark = document.createElement('span');
      mark.className = 'hidden-char';
      mark.title = 'a hidden character in the text';
      mark.textContent = 'U+' + m[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
      node.append(mark);
      at = m.index + m[0].length;
    }
    if (at < text.length) node.append(document.createTextNode(text.slice(at)));
    return found;
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401) { location.assign('/'); throw new Error('signed out'); }
    if (!res.ok) {
      const err = new Error((data && data.error) || ('HTTP ' + res.status));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function say(text, isError) {
    el.status.textContent = text;
    el.status.className = 'status' + (isError ? ' error' : '');
  }

  function renderPrompt(prompt) {
    el.prompt.replaceChildren();
    if (typeof prompt === 'string') return setText(el.prompt, prompt);
    let found = false;
    for (const m of prompt) {
      const d = document.createElement('div');
      d.className = 'msg';
      const r = document.createElement('span');
      r.className = 'role';
      r.textContent = String(m.role);
      const c = document.createElement('div');
      found = setText(c, String(m.content)) || found;
      d.append(r, c);
      el.prompt.append(d);
    }
    return found;
  }

  function showProgress(p, sampler) {
    if (!p) return;
    if (p.round === null) { el.progress.textContent = 'No round open yet'; return; }
    let t = 'Round ' + p.round + ' \\u00b7 ' + p.labeled + ' labeled \\u00b7 ' + p.ready + ' ready';
    if (p.sampling > 0) t += ' \\u00b7 ' + p.sampling + ' still being sampled';
    el.progress.textContent = t;
    st.canUndo = p.labeled > 0;
    el.undo.disabled = !st.canUndo;
    if (sampler && sampler.state === 'error') say('Sampling stopped: ' + sampler.message, true);
  }

  function pick(side) {
    if (!st.item || st.busy) return;
    select(side);
  }

  function select(side) {
    st.side = side;
    for (const b of document.querySelectorAll('button.choice')) b.setAttribute('aria-pressed', String(b.dataset.side === side));
    el.left.classList.toggle('picked', side === 'left');
    el.right.classList.toggle('picked', side === 'right');
    el.submit.disabled = false;
  }

  function show(item, given) {
    clearTimeout(st.poll);
    st.item = item;
    st.side = null;
    for (const b of document.querySelectorAll('button.choice')) b.setAttribute('aria-pressed', 'false');
    el.left.classList.remove('picked');
    el.right.classList.remove('picked');
    el.submit.disabled = true;
    el.reason.value = given && given.reason ? given.reason : '';
    // the number keys choose again on the next pair, even if the reason field had the focus
    if (document.activeElement === el.reason) el.reason.blur();
    el.work.classList.toggle('hidden', !item);
    el.empty.classList.toggle('hidden', !!item);
    if (!item) {
      st.poll = setTimeout(load, 3000);
      return;
    }
    el.work.dataset.assignment = String(item.assignmentId);
    const hidden = [renderPrompt(item.prompt), setText(el.left, item.left), setText(el.right, item.right)].some(Boolean);
    el.hiddenWarning.classList.toggle('hidden', !hidden);
    if (given && given.side) select(given.side);
  }

  async function load() {
    try {
      const d = await api('GET', '/api/next');
      show(d.item);
      showProgress(d.progress, d.sampler);
      if (!d.item) el.emptyText.textContent = d.progress.sampling > 0 ? 'The next pairs are being sampled\\u2026' : 'Nothing left to label in this round. Thank you!';
    } catch (e) { say(e.message, true); }
  }

  async function submit() {
    if (!st.item || !st.side || st.busy) return;
    st.busy = true;
    const reason = el.reason.value.trim();
    try {
      const d = await api('POST', '/api/label', { assignmentId: st.item.assignmentId, choice: st.side, reason: reason || null });
      say('Saved.', false);
      show(d.next);
      showProgress(d.progress, d.sampler);
      if (!d.next) el.emptyText.textContent = d.progress && d.progress.sampling > 0 ? 'The next pairs are being sampled\\u2026' : 'Nothing left to label in this round. Thank you!';
    } catch (e) {
      if (e.status === 409) {
        // stored by an earlier try whose answer was lost: move on
        say('Already saved.', false);
        st.busy = false;
        await load();
      } else say('Not saved: ' + e.message, true);
    } finally { st.busy = false; }
  }

  async function undo() {
    if (!st.canUndo || st.busy) return;
    st.busy = true;
    try {
      const d = await api('POST', '/api/undo', {});
      show(d.item, { side: d.side, reason: d.reason });
      showProgress(d.progress, d.sampler);
      say('Your last label was withdrawn; label the pair again.', false);
    } catch (e) {
      say('Undo failed: ' + e.message, true);
    } finally { st.busy = false; }
  }

  for (const b of document.querySelectorAll('button.choice')) b.addEventListener('click', () => pick(b.dataset.side));
  el.left.addEventListener('click', () => pick('left'));
  el.right.addEventListener('click', () => pick('right'));
  el.submit.addEventListener('click', submit);
  el.undo.addEventListener('click', undo);
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (e.key === 'Enter') { e.preventDefault(); submit(); return; }
    if (e.target === el.reason) return;
    const k = SIDES[Number(e.key) - 1];
    if (k && e.key.length === 1) { e.preventDefault(); pick(k); }
    else if (e.key === 'u' || e.key === 'U') { e.preventDefault(); undo(); }
  });
  load();
})();
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The Content-Security-Policy of a page whose only script and style carry `nonce`. */
export function pagePolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function shell(nonce: string, title: string, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style nonce="${nonce}">${STYLE}</style></head>
<body>${body}${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>`;
}

export function loginPage(nonce: string, error: string | null): string {
  return shell(
    nonce,
    'alignkit labeling: sign in',
    `<form class="card" method="post" action="/login">
<h1>alignkit labeling</h1>
<label for="token">Annotator token</label>
<input id="token" name="token" type="password" autocomplete="off" autofocus required maxlength="200">
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<button class="primary" type="submit">Sign in</button>
</form>`,
  );
}

export function labelPage(nonce: string, annotator: string): string {
  return shell(
    nonce,
    'alignkit labeling',
    `<header><h1>alignkit labeling</h1><span class="progress" id="progress" aria-live="polite"></span>
<button id="undo" disabled><kbd>U</kbd>Undo last</button>
<span>${escapeHtml(annotator)}</span><form method="post" action="/logout"><button type="submit">Sign out</button></form></header>
<main>
<section id="empty" class="empty hidden"><p id="empty-text">Loading…</p></section>
<section id="work" class="hidden">
<p class="warning hidden" id="hidden-warning" role="alert">This pair contains invisible or text-direction characters, shown here as marked <span class="hidden-char">U+…</span> codes: the text may read differently from what the model is trained on. Judge the text as shown, or mark both bad.</p>
<h2>Prompt</h2><div class="box prompt" id="prompt"></div>
<div class="pair">
<div><h2>Response A</h2><div class="box response" id="left"></div></div>
<div><h2>Response B</h2><div class="box response" id="right"></div></div>
</div>
<div class="choices" role="group" aria-label="Which response is better?">
<button class="choice" data-side="left" aria-pressed="false"><kbd>1</kbd>A is better</button>
<button class="choice" data-side="right" aria-pressed="false"><kbd>2</kbd>B is better</button>
<button class="choice" data-side="tie" aria-pressed="false"><kbd>3</kbd>Tie</button>
<button class="choice" data-side="both_bad" aria-pressed="false"><kbd>4</kbd>Both bad</button>
</div>
<div class="actions">
<input id="reason" maxlength="500" placeholder="Reason (optional)" aria-label="Reason (optional)">
<button class="primary" id="submit" disabled><kbd>Enter</kbd>Submit</button>
</div>
</section>
<p class="status" id="status" role="status"></p>
</main>`,
    SCRIPT,
  );
}
