// The feedback store: one SQLite file (better-sqlite3, WAL, synchronous=FULL) holding annotators (token hashes
// only), rounds, prompts, response pairs, assignments (who sees which pair, in which order) and labels. Every
// write is one transaction that has committed when the method returns, so the server answers after the commit.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { PairRecord, PromptRecord, PromptValue } from './inputs.js';

/** A label in the pair's own terms: response a, response b, a tie, or both bad. */
export type Choice = 'a' | 'b' | 'tie' | 'both_bad';
/** A label as the annotator gave it: the left or the right response (as shown), a tie, or both bad. */
export type Side = 'left' | 'right' | 'tie' | 'both_bad';
export const SIDES: readonly Side[] = ['left', 'right', 'tie', 'both_bad'];

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
  id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('policy', 'pairs')),
  policy TEXT, policy_b TEXT, input TEXT NOT NULL,
  agreement REAL NOT NULL DEFAULT 0, settings TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS prompts (
  id INTEGER PRIMARY KEY, round_id INTEGER NOT NULL REFERENCES rounds(id), line INTEGER, ext_id TEXT,
  prompt TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
  error TEXT);
CREATE INDEX IF NOT EXISTS prompts_pending ON prompts(round_id, id) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS pairs (
  id INTEGER PRIMARY KEY, round_id INTEGER NOT NULL REFERENCES rounds(id), prompt_id INTEGER REFERENCES prompts(id),
  ext_id TEXT, prompt TEXT NOT NULL, response_a TEXT NOT NULL, response_b TEXT NOT NULL, source_a TEXT, source_b TEXT,
  want INTEGER NOT NULL DEFAULT 1, labeled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, meta TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS pairs_prompt ON pairs(prompt_id) WHERE prompt_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS pairs_open ON pairs(round_id, id) WHERE labeled < want;
CREATE TABLE IF NOT EXISTS assignments (
  id INTEGER PRIMARY KEY, pair_id INTEGER NOT NULL REFERENCES pairs(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id), left_is_a INTEGER NOT NULL CHECK (left_is_a IN (0, 1)),
  opened_at INTEGER NOT NULL, UNIQUE (pair_id, annotator_id));
CREATE INDEX IF NOT EXISTS assignments_annotator ON assignments(annotator_id, opened_at);
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY, assignment_id INTEGER NOT NULL REFERENCES assignments(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id), pair_id INTEGER NOT NULL REFERENCES pairs(id),
  round_id INTEGER NOT NULL REFERENCES rounds(id),
  choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')), left_is_a INTEGER NOT NULL,
  reason TEXT, created_at INTEGER NOT NULL, undone_at INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS labels_active ON labels(assignment_id) WHERE undone_at IS NULL;
CREATE INDEX IF NOT EXISTS labels_annotator ON labels(annotator_id, id);
CREATE INDEX IF NOT EXISTS labels_round ON labels(round_id, id);
`;

/** How a policy round samples (stored with the round, so a restart samples the same way). */
export interface SampleSettings {
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed: number;
}

export interface Round {
  id: number;
  createdAt: number;
  source: 'policy' | 'pairs';
  policy: string | null;
  policyB: string | null;
  /** the prompts or pairs file the round was opened from (absolute path) */
  input: string;
  /** fraction of pairs labeled by two annotators */
  agreement: number;
  settings: SampleSettings;
}

export interface Annotator {
  id: number;
  name: string;
}

/** A pair as one annotator sees it. */
export interface Item {
  assignmentId: number;
  round: number;
  prompt: PromptValue;
  left: string;
  right: string;
}

export interface Progress {
  round: number | null;
  /** this annotator's labels in the round */
  labeled: number;
  /** pairs this annotator can label now (their open one included) */
  ready: number;
  /** prompts of the round still waiting to be sampled */
  sampling: number;
}

export interface ExportRow {
  labelId: number;
  pairId: number;
  round: number;
  annotator: string;
  choice: Choice;
  reason: string | null;
  prompt: PromptValue;
  responseA: string;
  responseB: string;
}

export interface LabelRow {
  labelId: number;
  pairId: number;
  round: number;
  annotator: string;
  choice: Choice;
  leftIsA: boolean;
}

/** A refused request: the HTTP status and a reason for the caller. */
export class StoreError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** sha256 of an annotator token (hex): the only form of a token the store keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Annotator names: 1–64 characters, no control characters, no surrounding spaces. */
export function checkName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (name.length < 1 || name.length > 64 || name.trim() !== name || /[\u0000-\u001f\u007f]/.test(name))
    throw new StoreError(400, `annotator name must be 1-64 characters without control characters or surrounding spaces, got ${JSON.stringify(name)}`);
}

interface PairRow {
  id: number;
  round_id: number;
  prompt: string;
  response_a: string;
  response_b: string;
}

export class FeedbackDB {
  readonly db: Database.Database;
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    try {
      this.db.pragma('busy_timeout = 10000');
      const mode = this.db.pragma('journal_mode = WAL', { simple: true });
      if (path !== ':memory:' && mode !== 'wal') throw new Error(`${path}: SQLite refused WAL mode (journal_mode is ${String(mode)})`);
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /** Opens (creating it and its folder if absent) a feedback database. */
  static open(path: string): FeedbackDB {
    return new FeedbackDB(path === ':memory:' ? path : resolve(path));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private migrate(): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.exec(SCHEMA);
      const row = this.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
      if (!row) this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
      else if (Number(row.value) !== SCHEMA_VERSION)
        throw new Error(`${this.path}: feedback database schema version ${row.value}, this alignkit reads version ${SCHEMA_VERSION}`);
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  // ------------------------------------------------------------------ annotators

  /** Adds an annotator and returns their token (shown once: only its hash is stored). */
  addAnnotator(name: string): { id: number; token: string } {
    checkName(name);
    const token = 'ak_' + randomBytes(32).toString('base64url');
    try {
      const r = this.db.prepare('INSERT INTO annotators (name, token_hash, created_at) VALUES (?, ?, ?)').run(name, hashToken(token), Date.now());
      return { id: Number(r.lastInsertRowid), token };
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new StoreError(409, `annotator ${JSON.stringify(name)} already exists`);
      throw e;
    }
  }

  annotatorByToken(token: string): Annotator | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return null;
    const row = this.db.prepare('SELECT id, name FROM annotators WHERE token_hash = ?').get(hashToken(token)) as Annotator | undefined;
    return row ?? null;
  }

  annotators(): Annotator[] {
    return this.db.prepare('SELECT id, name FROM annotators ORDER BY id').all() as Annotator[];
  }

  // ------------------------------------------------------------------ rounds

  /**
   * Opens a round: from a policy (or two) with the prompts to sample, or from ready-made pairs. The prompts or
   * pairs are stored with the round, in one transaction.
   */
  openRound(spec: {
    source: 'policy' | 'pairs';
    policy?: string | null;
    policyB?: string | null;
    input: string;
    agreement?: number;
    settings?: SampleSettings;
    prompts?: PromptRecord[];
    pairs?: PairRecord[];
  }): Round {
    const agreement = spec.agreement ?? 0;
    if (!(agreement >= 0 && agreement <= 1)) throw new StoreError(400, `agreement must lie in [0, 1], got ${agreement}`);
    if (spec.source === 'policy' && (!spec.policy || !spec.prompts)) throw new StoreError(400, 'a policy round needs a policy and prompts');
    if (spec.source === 'pairs' && !spec.pairs) throw new StoreError(400, 'a pairs round needs pairs');
    const now = Date.now();
    const id = this.db.transaction(() => {
      const r = this.db
        .prepare('INSERT INTO rounds (created_at, source, policy, policy_b, input, agreement, settings) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(now, spec.source, spec.policy ?? null, spec.policyB ?? null, spec.input, agreement, JSON.stringify(spec.settings ?? {}));
      const roundId = Number(r.lastInsertRowid);
      if (spec.prompts) {
        const ins = this.db.prepare('INSERT INTO prompts (round_id, line, ext_id, prompt) VALUES (?, ?, ?, ?)');
        for (const p of spec.prompts) ins.run(roundId, p.line, p.id, JSON.stringify(p.prompt));
      }
      if (spec.pairs) {
        const ins = this.db.prepare(
          'INSERT INTO pairs (round_id, ext_id, prompt, response_a, response_b, source_a, source_b, want, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        spec.pairs.forEach((p, k) => ins.run(roundId, p.id, JSON.stringify(p.prompt), p.responseA, p.responseB, p.sourceA, p.sourceB, want(k, agreement), now));
      }
      return roundId;
    }).immediate();
    return this.round(id)!;
  }

  /** Copies a round's prompts (as stored) for a new round. */
  promptsOf(roundId: number): PromptRecord[] {
    const rows = this.db.prepare('SELECT line, ext_id, prompt FROM prompts WHERE round_id = ? ORDER BY id').all(roundId) as { line: number; ext_id: string | null; prompt: string }[];
    return rows.map((r) => ({ line: r.line, id: r.ext_id, prompt: JSON.parse(r.prompt) as PromptValue }));
  }

  round(id: number): Round | null {
    const r = this.db.prepare('SELECT * FROM rounds WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? toRound(r) : null;
  }

  latestRound(): Round | null {
    const r = this.db.prepare('SELECT * FROM rounds ORDER BY id DESC LIMIT 1').get() as Record<string, unknown> | undefined;
    return r ? toRound(r) : null;
  }

  latestRoundId(): number | null {
    const r = this.db.prepare('SELECT max(id) AS id FROM rounds').get() as { id: number | null };
    return r.id;
  }

  rounds(): Round[] {
    return (this.db.prepare('SELECT * FROM rounds ORDER BY id').all() as Record<string, unknown>[]).map(toRound);
  }

  // ------------------------------------------------------------------ sampling

  /** The next prompts of a round still to be sampled, skipping ids in `exclude` (in flight). */
  pendingPrompts(roundId: number, limit: number, exclude: ReadonlySet<number> = new Set()): { id: number; prompt: PromptValue }[] {
    const rows = this.db
      .prepare("SELECT id, prompt FROM prompts WHERE round_id = ? AND status = 'pending' ORDER BY id LIMIT ?")
      .all(roundId, limit + exclude.size) as { id: number; prompt: string }[];
    return rows.filter((r) => !exclude.has(r.id)).slice(0, limit).map((r) => ({ id: r.id, prompt: JSON.parse(r.prompt) as PromptValue }));
  }

  pendingCount(roundId: number): number {
    return (this.db.prepare("SELECT count(*) AS n FROM prompts WHERE round_id = ? AND status = 'pending'").get(roundId) as { n: number }).n;
  }

  /** Stores a sampled pair and marks its prompt done (once: a second pair for the same prompt is ignored). */
  addSampledPair(promptId: number, p: { responseA: string; responseB: string; sourceA: string; sourceB: string; meta?: unknown }): number | null {
    return this.db.transaction(() => {
      const pr = this.db.prepare('SELECT round_id, ext_id, prompt, status FROM prompts WHERE id = ?').get(promptId) as
        | { round_id: number; ext_id: string | null; prompt: string; status: string }
        | undefined;
      if (!pr || pr.status !== 'pending') return null;
      const round = this.round(pr.round_id)!;
      const k = (this.db.prepare('SELECT count(*) AS n FROM pairs WHERE round_id = ?').get(pr.round_id) as { n: number }).n;
      const r = this.db
        .prepare(
          'INSERT INTO pairs (round_id, prompt_id, ext_id, prompt, response_a, response_b, source_a, source_b, want, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(pr.round_id, promptId, pr.ext_id, pr.prompt, p.responseA, p.responseB, p.sourceA, p.sourceB, want(k, round.agreement), Date.now(), p.meta === undefined ? null : JSON.stringify(p.meta));
      this.db.prepare("UPDATE prompts SET status = 'done' WHERE id = ?").run(promptId);
      return Number(r.lastInsertRowid);
    }).immediate();
  }

  /** Marks a prompt that cannot be sampled (too long, ...): it is skipped from then on. */
  failPrompt(promptId: number, error: string): void {
    this.db.prepare("UPDATE prompts SET status = 'failed', error = ? WHERE id = ? AND status = 'pending'").run(error.slice(0, 2000), promptId);
  }

  /** Pairs of the round that still want labels and are not held by a live assignment. */
  unclaimedCount(roundId: number, now: number, leaseMs: number): number {
    return (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM pairs p WHERE p.round_id = ? AND p.labeled < p.want
             AND p.labeled + (SELECT count(*) FROM assignments x WHERE x.pair_id = p.id AND x.opened_at > ?
                              AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = x.id AND l.undone_at IS NULL)) < p.want`,
        )
        .get(roundId, now - leaseMs) as { n: number }
    ).n;
  }

  // ------------------------------------------------------------------ labeling

  /**
   * The pair this annotator should label next in the round: their open assignment if they have one (the most
   * recently opened), else a new assignment to a pair that still wants labels (a pair wanting two gets two
   * different annotators), shown in random order. Null when there is nothing for them.
   */
  nextItem(annotatorId: number, roundId: number, now: number, leaseMs: number): Item | null {
    return this.db.transaction((): Item | null => {
      const open = this.openAssignment(annotatorId, roundId);
      if (open) return open;
      const pair = this.db
        .prepare(
          `SELECT p.id FROM pairs p WHERE p.round_id = @round AND p.labeled < p.want
             AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.pair_id = p.id AND x.annotator_id = @ann)
             AND p.labeled + (SELECT count(*) FROM assignments x WHERE x.pair_id = p.id AND x.opened_at > @cutoff
                              AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = x.id AND l.undone_at IS NULL)) < p.want
           ORDER BY p.id LIMIT 1`,
        )
        .get({ round: roundId, ann: annotatorId, cutoff: now - leaseMs }) as { id: number } | undefined;
      if (!pair) return null;
      const r = this.db
        .prepare('INSERT INTO assignments (pair_id, annotator_id, left_is_a, opened_at) VALUES (?, ?, ?, ?)')
        .run(pair.id, annotatorId, randomInt(2), now);
      return this.item(Number(r.lastInsertRowid))!;
    }).immediate();
  }

  private openAssignment(annotatorId: number, roundId: number): Item | null {
    const a = this.db
      .prepare(
        `SELECT a.id FROM assignments a JOIN pairs p ON p.id = a.pair_id
         WHERE a.annotator_id = ? AND p.round_id = ?
           AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id AND l.undone_at IS NULL)
         ORDER BY a.opened_at DESC, a.id DESC LIMIT 1`,
      )
      .get(annotatorId, roundId) as { id: number } | undefined;
    return a ? this.item(a.id) : null;
  }

  private item(assignmentId: number): Item | null {
    const r = this.db
      .prepare('SELECT a.id, a.left_is_a, p.round_id, p.prompt, p.response_a, p.response_b FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?')
      .get(assignmentId) as (PairRow & { left_is_a: number }) | undefined;
    if (!r) return null;
    return {
      assignmentId: r.id,
      round: r.round_id,
      prompt: JSON.parse(r.prompt) as PromptValue,
      left: r.left_is_a ? r.response_a : r.response_b,
      right: r.left_is_a ? r.response_b : r.response_a,
    };
  }

  /**
   * Records a label for one of the annotator's own assignments. Refuses (StoreError) an assignment that is not
   * theirs (404: another annotator's looks the same as a missing one) or already labeled (409).
   */
  label(annotatorId: number, assignmentId: number, side: Side, reason: string | null, now: number): number {
    return this.db.transaction((): number => {
      const a = this.db
        .prepare('SELECT a.id, a.annotator_id, a.pair_id, a.left_is_a, p.round_id FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?')
        .get(assignmentId) as { id: number; annotator_id: number; pair_id: number; left_is_a: number; round_id: number } | undefined;
      if (!a || a.annotator_id !== annotatorId) throw new StoreError(404, `no assignment ${assignmentId} for you`);
      const done = this.db.prepare('SELECT id FROM labels WHERE assignment_id = ? AND undone_at IS NULL').get(assignmentId);
      if (done) throw new StoreError(409, `assignment ${assignmentId} is already labeled (undo it first to change it)`);
      const choice: Choice = side === 'left' ? (a.left_is_a ? 'a' : 'b') : side === 'right' ? (a.left_is_a ? 'b' : 'a') : side;
      const r = this.db
        .prepare('INSERT INTO labels (assignment_id, annotator_id, pair_id, round_id, choice, left_is_a, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(assignmentId, annotatorId, a.pair_id, a.round_id, choice, a.left_is_a, reason, now);
      this.db.prepare('UPDATE pairs SET labeled = labeled + 1 WHERE id = ?').run(a.pair_id);
      return Number(r.lastInsertRowid);
    }).immediate();
  }

  /**
   * Withdraws the annotator's latest label in the round (kept in the database, marked undone) and reopens its
   * assignment, which becomes their next item. Returns that item with the label as it was given, or null.
   */
  undo(annotatorId: number, roundId: number, now: number): { labelId: number; item: Item; side: Side; reason: string | null } | null {
    return this.db.transaction(() => {
      const l = this.db
        .prepare('SELECT id, assignment_id, pair_id, choice, left_is_a, reason FROM labels WHERE annotator_id = ? AND round_id = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1')
        .get(annotatorId, roundId) as { id: number; assignment_id: number; pair_id: number; choice: Choice; left_is_a: number; reason: string | null } | undefined;
      if (!l) return null;
      this.db.prepare('UPDATE labels SET undone_at = ? WHERE id = ?').run(now, l.id);
      this.db.prepare('UPDATE pairs SET labeled = labeled - 1 WHERE id = ?').run(l.pair_id);
      this.db.prepare('UPDATE assignments SET opened_at = ? WHERE id = ?').run(now, l.assignment_id);
      const side: Side = l.choice === 'a' ? (l.left_is_a ? 'left' : 'right') : l.choice === 'b' ? (l.left_is_a ? 'right' : 'left') : l.choice;
      return { labelId: l.id, item: this.item(l.assignment_id)!, side, reason: l.reason };
    }).immediate();
  }

  progress(annotatorId: number, roundId: number | null, now: number, leaseMs: number): Progress {
    if (roundId === null) return { round: null, labeled: 0, ready: 0, sampling: 0 };
    const labeled = (this.db.prepare('SELECT count(*) AS n FROM labels WHERE annotator_id = ? AND round_id = ? AND undone_at IS NULL').get(annotatorId, roundId) as { n: number }).n;
    const open = this.openAssignment(annotatorId, roundId) ? 1 : 0;
    const fresh = (
      this.db
        .prepare(
          `SELECT count(*) AS n FROM pairs p WHERE p.round_id = @round AND p.labeled < p.want
             AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.pair_id = p.id AND x.annotator_id = @ann)
             AND p.labeled + (SELECT count(*) FROM assignments x WHERE x.pair_id = p.id AND x.opened_at > @cutoff
                              AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = x.id AND l.undone_at IS NULL)) < p.want`,
        )
        .get({ round: roundId, ann: annotatorId, cutoff: now - leaseMs }) as { n: number }
    ).n;
    return { round: roundId, labeled, ready: open + fresh, sampling: this.pendingCount(roundId) };
  }

  /** The annotator's own labels (never anyone else's), newest first. */
  labelsOf(annotatorId: number, limit = 100): { labelId: number; assignmentId: number; round: number; side: Side; reason: string | null; createdAt: number }[] {
    const rows = this.db
      .prepare('SELECT id, assignment_id, round_id, choice, left_is_a, reason, created_at FROM labels WHERE annotator_id = ? AND undone_at IS NULL ORDER BY id DESC LIMIT ?')
      .all(annotatorId, limit) as { id: number; assignment_id: number; round_id: number; choice: Choice; left_is_a: number; reason: string | null; created_at: number }[];
    return rows.map((l) => ({
      labelId: l.id,
      assignmentId: l.assignment_id,
      round: l.round_id,
      side: l.choice === 'a' ? (l.left_is_a ? 'left' : 'right') : l.choice === 'b' ? (l.left_is_a ? 'right' : 'left') : l.choice,
      reason: l.reason,
      createdAt: l.created_at,
    }));
  }

  // ------------------------------------------------------------------ reading out

  /** Every standing (not undone) label with its pair, in label order; one read transaction. */
  exportRows(round?: number): ExportRow[] {
    const rows = this.db
      .prepare(
        `SELECT l.id, l.pair_id, l.round_id, an.name, l.choice, l.reason, p.prompt, p.response_a, p.response_b
         FROM labels l JOIN pairs p ON p.id = l.pair_id JOIN annotators an ON an.id = l.annotator_id
         WHERE l.undone_at IS NULL AND (@round IS NULL OR l.round_id = @round) ORDER BY l.id`,
      )
      .all({ round: round ?? null }) as { id: number; pair_id: number; round_id: number; name: string; choice: Choice; reason: string | null; prompt: string; response_a: string; response_b: string }[];
    return rows.map((r) => ({
      labelId: r.id,
      pairId: r.pair_id,
      round: r.round_id,
      annotator: r.name,
      choice: r.choice,
      reason: r.reason,
      prompt: JSON.parse(r.prompt) as PromptValue,
      responseA: r.response_a,
      responseB: r.response_b,
    }));
  }

  /** Every standing label without the texts (for statistics). */
  labelRows(round?: number): LabelRow[] {
    const rows = this.db
      .prepare(
        `SELECT l.id, l.pair_id, l.round_id, an.name, l.choice, l.left_is_a FROM labels l JOIN annotators an ON an.id = l.annotator_id
         WHERE l.undone_at IS NULL AND (@round IS NULL OR l.round_id = @round) ORDER BY l.id`,
      )
      .all({ round: round ?? null }) as { id: number; pair_id: number; round_id: number; name: string; choice: Choice; left_is_a: number }[];
    return rows.map((r) => ({ labelId: r.id, pairId: r.pair_id, round: r.round_id, annotator: r.name, choice: r.choice, leftIsA: r.left_is_a === 1 }));
  }

  /** Pairs and prompts per round (for statistics). */
  roundCounts(): { round: number; pairs: number; pending: number; failed: number }[] {
    return this.db
      .prepare(
        `SELECT r.id AS round,
           (SELECT count(*) FROM pairs p WHERE p.round_id = r.id) AS pairs,
           (SELECT count(*) FROM prompts q WHERE q.round_id = r.id AND q.status = 'pending') AS pending,
           (SELECT count(*) FROM prompts q WHERE q.round_id = r.id AND q.status = 'failed') AS failed
         FROM rounds r ORDER BY r.id`,
      )
      .all() as { round: number; pairs: number; pending: number; failed: number }[];
  }
}

/** Whether the k-th pair (0-based) of a round is labeled twice: exactly a fraction `agreement` of pairs are. */
function want(k: number, agreement: number): number {
  return Math.floor((k + 1) * agreement) > Math.floor(k * agreement) ? 2 : 1;
}

function toRound(r: Record<string, unknown>): Round {
  return {
    id: r.id as number,
    createdAt: r.created_at as number,
    source: r.source as 'policy' | 'pairs',
    policy: (r.policy as string | null) ?? null,
    policyB: (r.policy_b as string | null) ?? null,
    input: r.input as string,
    agreement: r.agreement as number,
    settings: JSON.parse(r.settings as string) as SampleSettings,
  };
}
