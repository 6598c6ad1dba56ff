// The feedback store: one SQLite file (better-sqlite3, WAL, synchronous=FULL) holding annotators (token hashes
// only), rounds, prompts, response pairs, assignments (who sees which pair, in which order) and labels. Every
// write is one transaction that has committed when the method returns, so the server answers after the commit.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { PairRecord, PromptRecord, PromptValue } from './inputs.js';

/** A label in the pair's own terms: response a, response b, a tie, or both bad. */
export type Choice = 'a' | 'b' | 'tie' | 'both_bad';
/** A label as the annotator gave it: the left or the right response (as shown), a tie, or both bad. */
export type Side = 'left' | 'right' | 'tie' | 'both_bad';
export const SIDES: readonly Side[] = ['left', 'right', 'tie', 'both_bad'];

const SCHEMA_VERSION = 2;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
  simulated INTEGER NOT NULL DEFAULT 0, removed_at INTEGER);
CREATE TABLE IF NOT EXISTS sessions (
  id INTEGER PRIMARY KEY, annotator_id INTEGER NOT NULL REFERENCES annotators(id), session_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ended_at INTEGER);
CREATE TABLE IF NOT EXISTS rounds (
  id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('policy', 'pairs')),
  policy TEXT, policy_b TEXT, input TEXT NOT NULL,
  agreement REAL NOT NULL DEFAULT 0, settings TEXT NOT NULL DEFAULT '{}',
  remaining INTEGER NOT NULL DEFAULT 0);
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
CREATE INDEX IF NOT EXISTS pairs_partly ON pairs(round_id) WHERE labeled > 0 AND labeled < want;
CREATE TABLE IF NOT EXISTS assignments (
  id INTEGER PRIMARY KEY, pair_id INTEGER NOT NULL REFERENCES pairs(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id), left_is_a INTEGER NOT NULL CHECK (left_is_a IN (0, 1)),
  opened_at INTEGER NOT NULL, round_id INTEGER NOT NULL DEFAULT 0, labeled INTEGER NOT NULL DEFAULT 0,
  UNIQUE (pair_id, annotator_id));
CREATE INDEX IF NOT EXISTS assignments_annotator ON assignments(annotator_id, opened_at);
CREATE INDEX IF NOT EXISTS assignments_live ON assignments(round_id, opened_at) WHERE labeled = 0;
CREATE INDEX IF NOT EXISTS assignments_unlabeled ON assignments(annotator_id, round_id) WHERE labeled = 0;
CREATE TABLE IF NOT EXISTS labels (
  id INTEGER PRIMARY KEY, assignment_id INTEGER NOT NULL REFERENCES assignments(id),
  annotator_id INTEGER NOT NULL REFERENCES annotators(id), pair_id INTEGER NOT NULL REFERENCES pairs(id),
  round_id INTEGER NOT NULL REFERENCES rounds(id),
  choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')), left_is_a INTEGER NOT NULL,
  reason TEXT, created_at INTEGER NOT NULL, undone_at INTEGER);
CREATE UNIQUE INDEX IF NOT EXISTS labels_active ON labels(assignment_id) WHERE undone_at IS NULL;
CREATE INDEX IF NOT EXISTS labels_annotator ON labels(annotator_id, id);
CREATE INDEX IF NOT EXISTS labels_round ON labels(round_id, id);
CREATE INDEX IF NOT EXISTS labels_annotator_round ON labels(annotator_id, round_id) WHERE undone_at IS NULL;
`;

/**
 * Version 1 → 2: annotators can be simulated or removed, sessions, and the counters that keep the progress
 * queries from scanning every pair (assignments know their round and whether they are labelled; a round knows
 * how many labels it still wants).
 */
const MIGRATE_1_TO_2 = `
ALTER TABLE annotators ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE annotators ADD COLUMN removed_at INTEGER;
ALTER TABLE rounds ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN round_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN labeled INTEGER NOT NULL DEFAULT 0;
UPDATE assignments SET round_id = (SELECT p.round_id FROM pairs p WHERE p.id = assignments.pair_id),
  labeled = EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = assignments.id AND l.undone_at IS NULL);
UPDATE rounds SET remaining = (SELECT coalesce(sum(max(0, p.want - p.labeled)), 0) FROM pairs p WHERE p.round_id = rounds.id);
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
  /** a simulated annotator (alignkit label simulate), not a person */
  simulated: boolean;
}

/** A pair as one annotator sees it. */
interface Item {
  assignmentId: number;
  round: number;
  prompt: PromptValue;
  left: string;
  right: string;
}

interface Progress {
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
  /** the annotator is simulated (alignkit label simulate), not a person */
  simulated: boolean;
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
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A new random annotator token. */
function newToken(): string {
  return 'ak_' + randomBytes(32).toString('base64url');
}

/** sha256 of an annotator token (hex): the only form of a token the store keeps. */
function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Annotator names: 1–64 characters, no control characters, no surrounding spaces. */
function checkName(name: string): void {
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
  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, prepared once per connection. */
  private q(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  private constructor(path: string) {
    this.path = path;
    if (path !== ':memory:') checkPath(path);
    try {
      this.db = new Database(path);
    } catch (e) {
      throw new Error(`${path}: cannot open the feedback database (${(e as Error).message})`);
    }
    try {
      this.db.pragma('busy_timeout = 10000');
      const mode = this.db.pragma('journal_mode = WAL', { simple: true });
      if (path !== ':memory:' && mode !== 'wal') throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`);
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (e) {
      this.db.close();
      const code = (e as { code?: string }).code;
      const why =
        code === 'SQLITE_NOTADB'
          ? 'it is not a SQLite database (an alignkit feedback database is one SQLite file)'
          : code?.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN'
            ? `it cannot be written (${(e as Error).message}); the file, its -wal and -shm files and its folder must be writable`
            : (e as Error).message;
      throw new Error(`${path}: ${why}`);
    }
  }

  /** Opens (creating it and its folder if absent) a feedback database. */
  static open(path: string): FeedbackDB {
    return new FeedbackDB(path === ':memory:' ? path : resolve(path));
  }

  /**
   * How long one statement waits for another connection's write lock, ms (10 s by default). The server sets it
   * short and retries off the event loop (see busy.ts), so a held lock never freezes the other annotators.
   */
  setBusyTimeout(ms: number): void {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(ms))}`);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private migrate(): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const hasMeta = this.q("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
      const row = hasMeta ? (this.q("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined) : undefined;
      const version = row ? Number(row.value) : null;
      if (version !== null && version > SCHEMA_VERSION)
        throw new Error(`${this.path}: feedback database schema version ${version}; this alignkit reads versions up to ${SCHEMA_VERSION} (a newer alignkit wrote it)`);
      if (version === 1) this.db.exec(MIGRATE_1_TO_2);
      this.db.exec(SCHEMA);
      if (version === null) this.q("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
      else this.q("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION));
      this.db.exec('COMMIT');
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  // ------------------------------------------------------------------ annotators

  /** Adds an annotator and returns their token (shown once: only its hash is stored). */
  addAnnotator(name: string, o: { simulated?: boolean } = {}): { id: number; token: string } {
    checkName(name);
    const token = newToken();
    try {
      const r = this.q('INSERT INTO annotators (name, token_hash, created_at, simulated) VALUES (?, ?, ?, ?)').run(name, hashToken(token), Date.now(), o.simulated ? 1 : 0);
      return { id: Number(r.lastInsertRowid), token };
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new StoreError(409, `annotator ${JSON.stringify(name)} already exists`);
      throw e;
    }
  }

  /** The annotator a token belongs to (removed annotators have none). */
  annotatorByToken(token: string): Annotator | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return null;
    const row = this.q('SELECT id, name, simulated FROM annotators WHERE token_hash = ? AND removed_at IS NULL').get(hashToken(token)) as { id: number; name: string; simulated: number } | undefined;
    return row ? { id: row.id, name: row.name, simulated: row.simulated === 1 } : null;
  }

  /** The annotators (removed ones only with `all`). */
  annotators(o: { all?: boolean } = {}): (Annotator & { removed: boolean })[] {
    const rows = this.q(`SELECT id, name, simulated, removed_at FROM annotators ${o.all ? '' : 'WHERE removed_at IS NULL'} ORDER BY id`).all() as {
      id: number;
      name: string;
      simulated: number;
      removed_at: number | null;
    }[];
    return rows.map((r) => ({ id: r.id, name: r.name, simulated: r.simulated === 1, removed: r.removed_at !== null }));
  }

  private annotatorByName(name: string): { id: number; removed_at: number | null; simulated: number } {
    const row = this.q('SELECT id, removed_at, simulated FROM annotators WHERE name = ?').get(name) as { id: number; removed_at: number | null; simulated: number } | undefined;
    if (!row) throw new StoreError(404, `no annotator ${JSON.stringify(name)}`);
    return row;
  }

  /** Revokes an annotator at once: their token and every session stop working; their labels stay. */
  removeAnnotator(name: string): void {
    const a = this.annotatorByName(name);
    if (a.removed_at !== null) throw new StoreError(409, `annotator ${JSON.stringify(name)} was already removed`);
    const now = Date.now();
    this.db
      .transaction(() => {
        this.q('UPDATE annotators SET removed_at = ? WHERE id = ?').run(now, a.id);
        this.q('UPDATE sessions SET ended_at = ? WHERE annotator_id = ? AND ended_at IS NULL').run(now, a.id);
      })
      .immediate();
  }

  /** A new token for an annotator (the old one and every session stop working at once); returns it (shown once). */
  rotateToken(name: string): string {
    const a = this.annotatorByName(name);
    if (a.removed_at !== null) throw new StoreError(409, `annotator ${JSON.stringify(name)} was removed; add a new annotator instead`);
    const token = newToken(),
      now = Date.now();
    this.db
      .transaction(() => {
        this.q('UPDATE annotators SET token_hash = ? WHERE id = ?').run(hashToken(token), a.id);
        this.q('UPDATE sessions SET ended_at = ? WHERE annotator_id = ? AND ended_at IS NULL').run(now, a.id);
      })
      .immediate();
    return token;
  }

  // ------------------------------------------------------------------ sessions

  /** Starts a browser session for an annotator; returns the session id for the cookie (only its hash is stored). */
  createSession(annotatorId: number, ttlMs: number, now = Date.now()): string {
    const id = 'aks_' + randomBytes(32).toString('base64url');
    this.q('INSERT INTO sessions (annotator_id, session_hash, created_at, expires_at) VALUES (?, ?, ?, ?)').run(annotatorId, hashToken(id), now, now + ttlMs);
    return id;
  }

  /** The annotator of a live session (not ended, not expired, annotator not removed). */
  annotatorBySession(session: string, now = Date.now()): Annotator | null {
    if (typeof session !== 'string' || !session.startsWith('aks_') || session.length > 200) return null;
    const row = this.q(
      `SELECT a.id, a.name, a.simulated FROM sessions s JOIN annotators a ON a.id = s.annotator_id
       WHERE s.session_hash = ? AND s.ended_at IS NULL AND s.expires_at > ? AND a.removed_at IS NULL`,
    ).get(hashToken(session), now) as { id: number; name: string; simulated: number } | undefined;
    return row ? { id: row.id, name: row.name, simulated: row.simulated === 1 } : null;
  }

  /** Ends a session (logout): the cookie stops working even if replayed. */
  endSession(session: string, now = Date.now()): void {
    if (typeof session !== 'string') return;
    this.q('UPDATE sessions SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL').run(now, hashToken(session));
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
    const id = this.db
      .transaction(() => {
        const r = this.q('INSERT INTO rounds (created_at, source, policy, policy_b, input, agreement, settings) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
          now,
          spec.source,
          spec.policy ?? null,
          spec.policyB ?? null,
          spec.input,
          agreement,
          JSON.stringify(spec.settings ?? {}),
        );
        const roundId = Number(r.lastInsertRowid);
        if (spec.prompts) {
          const ins = this.q('INSERT INTO prompts (round_id, line, ext_id, prompt) VALUES (?, ?, ?, ?)');
          for (const p of spec.prompts) ins.run(roundId, p.line, p.id, JSON.stringify(p.prompt));
        }
        if (spec.pairs) {
          const ins = this.q('INSERT INTO pairs (round_id, ext_id, prompt, response_a, response_b, source_a, source_b, want, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
          let wanted = 0;
          spec.pairs.forEach((p, k) => {
            const w = want(k, agreement);
            wanted += w;
            ins.run(roundId, p.id, JSON.stringify(p.prompt), p.responseA, p.responseB, p.sourceA, p.sourceB, w, now);
          });
          this.q('UPDATE rounds SET remaining = remaining + ? WHERE id = ?').run(wanted, roundId);
        }
        return roundId;
      })
      .immediate();
    return this.round(id)!;
  }

  /** Copies a round's prompts (as stored) for a new round. */
  promptsOf(roundId: number): PromptRecord[] {
    const rows = this.q('SELECT line, ext_id, prompt FROM prompts WHERE round_id = ? ORDER BY id').all(roundId) as { line: number; ext_id: string | null; prompt: string }[];
    return rows.map((r) => ({ line: r.line, id: r.ext_id, prompt: JSON.parse(r.prompt) as PromptValue }));
  }

  round(id: number): Round | null {
    const r = this.q('SELECT * FROM rounds WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? toRound(r) : null;
  }

  latestRound(): Round | null {
    const r = this.q('SELECT * FROM rounds ORDER BY id DESC LIMIT 1').get() as Record<string, unknown> | undefined;
    return r ? toRound(r) : null;
  }

  latestRoundId(): number | null {
    const r = this.q('SELECT max(id) AS id FROM rounds').get() as { id: number | null };
    return r.id;
  }

  rounds(): Round[] {
    return (this.q('SELECT * FROM rounds ORDER BY id').all() as Record<string, unknown>[]).map(toRound);
  }

  // ------------------------------------------------------------------ sampling

  /** The next prompts of a round still to be sampled, skipping ids in `exclude` (in flight). */
  pendingPrompts(roundId: number, limit: number, exclude: ReadonlySet<number> = new Set()): { id: number; prompt: PromptValue }[] {
    const rows = this.q("SELECT id, prompt FROM prompts WHERE round_id = ? AND status = 'pending' ORDER BY id LIMIT ?").all(roundId, limit + exclude.size) as { id: number; prompt: string }[];
    return rows
      .filter((r) => !exclude.has(r.id))
      .slice(0, limit)
      .map((r) => ({ id: r.id, prompt: JSON.parse(r.prompt) as PromptValue }));
  }

  pendingCount(roundId: number): number {
    return (this.q("SELECT count(*) AS n FROM prompts WHERE round_id = ? AND status = 'pending'").get(roundId) as { n: number }).n;
  }

  /** Stores a sampled pair and marks its prompt done (once: a second pair for the same prompt is ignored). */
  addSampledPair(promptId: number, p: { responseA: string; responseB: string; sourceA: string; sourceB: string; meta?: unknown }): number | null {
    return this.db
      .transaction(() => {
        const pr = this.q('SELECT round_id, ext_id, prompt, status FROM prompts WHERE id = ?').get(promptId) as { round_id: number; ext_id: string | null; prompt: string; status: string } | undefined;
        if (!pr || pr.status !== 'pending') return null;
        const round = this.round(pr.round_id)!;
        const k = (this.q('SELECT count(*) AS n FROM pairs WHERE round_id = ?').get(pr.round_id) as { n: number }).n;
        const w = want(k, round.agreement);
        const r = this.q('INSERT INTO pairs (round_id, prompt_id, ext_id, prompt, response_a, response_b, source_a, source_b, want, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
          pr.round_id,
          promptId,
          pr.ext_id,
          pr.prompt,
          p.responseA,
          p.responseB,
          p.sourceA,
          p.sourceB,
          w,
          Date.now(),
          p.meta === undefined ? null : JSON.stringify(p.meta),
        );
        this.q("UPDATE prompts SET status = 'done' WHERE id = ?").run(promptId);
        this.q('UPDATE rounds SET remaining = remaining + ? WHERE id = ?').run(w, pr.round_id);
        return Number(r.lastInsertRowid);
      })
      .immediate();
  }

  /** Marks a prompt that cannot be sampled (too long, ...): it is skipped from then on. */
  failPrompt(promptId: number, error: string): void {
    this.q("UPDATE prompts SET status = 'failed', error = ? WHERE id = ? AND status = 'pending'").run(error.slice(0, 2000), promptId);
  }

  /** Unlabelled assignments of the round opened after `cutoff` (pairs held by an annotator now). */
  private liveClaims(roundId: number, cutoff: number): number {
    // per pair at most the labels it still wants (two live claims on a pair wanting one count once)
    return (
      this.q(
        `SELECT coalesce(sum(min(x.c, max(0, p.want - p.labeled))), 0) AS n
         FROM (SELECT pair_id, count(*) AS c FROM assignments WHERE round_id = ? AND labeled = 0 AND opened_at > ? GROUP BY pair_id) x
         JOIN pairs p ON p.id = x.pair_id`,
      ).get(roundId, cutoff) as { n: number }
    ).n;
  }

  /** Labels the round still wants (Σ over its pairs of want − labels, kept as a counter). */
  remaining(roundId: number): number {
    return (this.q('SELECT remaining FROM rounds WHERE id = ?').get(roundId) as { remaining: number } | undefined)?.remaining ?? 0;
  }

  /**
   * Labels of the round that are wanted and not held by a live assignment: the counter less the live claims (an
   * indexed count over the open assignments, never a scan of the pairs).
   */
  unclaimedCount(roundId: number, now: number, leaseMs: number): number {
    return Math.max(0, this.remaining(roundId) - this.liveClaims(roundId, now - leaseMs));
  }

  /** Standing labels of a round (or of all rounds). */
  labelCount(round?: number): number {
    if (round === undefined) return (this.q('SELECT count(*) AS n FROM labels WHERE undone_at IS NULL').get() as { n: number }).n;
    return (this.q('SELECT count(*) AS n FROM labels WHERE round_id = ? AND undone_at IS NULL').get(round) as { n: number }).n;
  }

  // ------------------------------------------------------------------ labeling

  /**
   * The pair this annotator should label next in the round: their open assignment if they have one (the most
   * recently opened), else a new assignment to a pair that still wants labels (a pair wanting two gets two
   * different annotators), shown in random order. Null when there is nothing for them.
   */
  nextItem(annotatorId: number, roundId: number, now: number, leaseMs: number): Item | null {
    return this.db
      .transaction((): Item | null => {
        const open = this.openAssignment(annotatorId, roundId);
        if (open) return open;
        const pair = this.q(
          `SELECT p.id FROM pairs p WHERE p.round_id = @round AND p.labeled < p.want
             AND NOT EXISTS (SELECT 1 FROM assignments x WHERE x.pair_id = p.id AND x.annotator_id = @ann)
             AND p.labeled + (SELECT count(*) FROM assignments x WHERE x.pair_id = p.id AND x.opened_at > @cutoff
                              AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = x.id AND l.undone_at IS NULL)) < p.want
           ORDER BY p.id LIMIT 1`,
        ).get({ round: roundId, ann: annotatorId, cutoff: now - leaseMs }) as { id: number } | undefined;
        if (!pair) return null;
        const r = this.q('INSERT INTO assignments (pair_id, annotator_id, left_is_a, opened_at, round_id) VALUES (?, ?, ?, ?, ?)').run(pair.id, annotatorId, randomInt(2), now, roundId);
        return this.item(Number(r.lastInsertRowid))!;
      })
      .immediate();
  }

  private openAssignment(annotatorId: number, roundId: number): Item | null {
    const a = this.q(
      `SELECT a.id FROM assignments a JOIN pairs p ON p.id = a.pair_id
         WHERE a.annotator_id = ? AND p.round_id = ?
           AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.assignment_id = a.id AND l.undone_at IS NULL)
         ORDER BY a.opened_at DESC, a.id DESC LIMIT 1`,
    ).get(annotatorId, roundId) as { id: number } | undefined;
    return a ? this.item(a.id) : null;
  }

  private item(assignmentId: number): Item | null {
    const r = this.q('SELECT a.id, a.left_is_a, p.round_id, p.prompt, p.response_a, p.response_b FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?').get(assignmentId) as
      | (PairRow & { left_is_a: number })
      | undefined;
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
    return this.db
      .transaction((): number => {
        const a = this.q('SELECT a.id, a.annotator_id, a.pair_id, a.left_is_a, p.round_id FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE a.id = ?').get(assignmentId) as
          | { id: number; annotator_id: number; pair_id: number; left_is_a: number; round_id: number }
          | undefined;
        if (!a || a.annotator_id !== annotatorId) throw new StoreError(404, `no assignment ${assignmentId} for you`);
        const done = this.q('SELECT id FROM labels WHERE assignment_id = ? AND undone_at IS NULL').get(assignmentId);
        if (done) throw new StoreError(409, `assignment ${assignmentId} is already labeled (undo it first to change it)`);
        const choice: Choice = side === 'left' ? (a.left_is_a ? 'a' : 'b') : side === 'right' ? (a.left_is_a ? 'b' : 'a') : side;
        const r = this.q('INSERT INTO labels (assignment_id, annotator_id, pair_id, round_id, choice, left_is_a, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
          assignmentId,
          annotatorId,
          a.pair_id,
          a.round_id,
          choice,
          a.left_is_a,
          reason,
          now,
        );
        const p = this.q('SELECT labeled, want FROM pairs WHERE id = ?').get(a.pair_id) as { labeled: number; want: number };
        this.q('UPDATE pairs SET labeled = labeled + 1 WHERE id = ?').run(a.pair_id);
        this.q('UPDATE assignments SET labeled = 1 WHERE id = ?').run(assignmentId);
        if (p.labeled < p.want) this.q('UPDATE rounds SET remaining = remaining - 1 WHERE id = ?').run(a.round_id);
        return Number(r.lastInsertRowid);
      })
      .immediate();
  }

  /**
   * label() and then, in the same transaction (one commit, one sync to disk), the annotator's next item in the
   * round. The label stands even if finding the next item fails (that part is rolled back alone, and its error
   * returned).
   */
  labelThenNext(
    annotatorId: number,
    assignmentId: number,
    side: Side,
    reason: string | null,
    now: number,
    roundId: number | null,
    leaseMs: number,
  ): { labelId: number; next: Item | null; nextError: Error | null } {
    return this.db
      .transaction(() => {
        const labelId = this.label(annotatorId, assignmentId, side, reason, now);
        let next: Item | null = null,
          nextError: Error | null = null;
        try {
          // nested: a savepoint, undone by itself if it throws
          next = roundId === null ? null : this.nextItem(annotatorId, roundId, now, leaseMs);
        } catch (e) {
          nextError = e as Error;
        }
        return { labelId, next, nextError };
      })
      .immediate();
  }

  /**
   * Withdraws the annotator's latest label in the round (kept in the database, marked undone) and reopens its
   * assignment, which becomes their next item. Returns that item with the label as it was given, or null.
   */
  undo(annotatorId: number, roundId: number, now: number): { labelId: number; item: Item; side: Side; reason: string | null } | null {
    return this.db
      .transaction(() => {
        const l = this.q('SELECT id, assignment_id, pair_id, choice, left_is_a, reason FROM labels WHERE annotator_id = ? AND round_id = ? AND undone_at IS NULL ORDER BY id DESC LIMIT 1').get(
          annotatorId,
          roundId,
        ) as { id: number; assignment_id: number; pair_id: number; choice: Choice; left_is_a: number; reason: string | null } | undefined;
        if (!l) return null;
        this.q('UPDATE labels SET undone_at = ? WHERE id = ?').run(now, l.id);
        const p = this.q('SELECT labeled, want FROM pairs WHERE id = ?').get(l.pair_id) as { labeled: number; want: number };
        this.q('UPDATE pairs SET labeled = labeled - 1 WHERE id = ?').run(l.pair_id);
        this.q('UPDATE assignments SET opened_at = ?, labeled = 0 WHERE id = ?').run(now, l.assignment_id);
        if (p.labeled - 1 < p.want) this.q('UPDATE rounds SET remaining = remaining + 1 WHERE id = ?').run(roundId);
        const side: Side = l.choice === 'a' ? (l.left_is_a ? 'left' : 'right') : l.choice === 'b' ? (l.left_is_a ? 'right' : 'left') : l.choice;
        return { labelId: l.id, item: this.item(l.assignment_id)!, side, reason: l.reason };
      })
      .immediate();
  }

  /**
   * An annotator's progress in a round, from counters and indexed queries (no scan of the round's pairs): their
   * labels, the pairs they can label now (their open one, plus the labels still wanted that nobody holds and that
   * are not on pairs they have had already), and the prompts still waiting to be sampled.
   */
  progress(annotatorId: number, roundId: number | null, now: number, leaseMs: number): Progress {
    if (roundId === null) return { round: null, labeled: 0, ready: 0, sampling: 0 };
    const cutoff = now - leaseMs;
    const labeled = (this.q('SELECT count(*) AS n FROM labels WHERE annotator_id = ? AND round_id = ? AND undone_at IS NULL').get(annotatorId, roundId) as { n: number }).n;
    const open = this.openAssignment(annotatorId, roundId) ? 1 : 0;
    // pairs still wanting labels that this annotator has had, not theirs to take again: ones they let expire (few:
    // their unlabelled assignments), and ones they labelled that want another label (a pair they labelled has at
    // least one label, so it is among the round's partly labelled pairs, also few); neither scans their history
    // (INDEXED BY and CROSS JOIN: without statistics SQLite would walk the annotator’s assignments instead)
    const expired = (
      this.q(
        `SELECT count(*) AS n FROM assignments a INDEXED BY assignments_unlabeled JOIN pairs p ON p.id = a.pair_id
         WHERE a.annotator_id = ? AND a.round_id = ? AND a.labeled = 0 AND a.opened_at <= ? AND p.labeled < p.want`,
      ).get(annotatorId, roundId, cutoff) as { n: number }
    ).n;
    const labelledWanting = (
      this.q(
        `SELECT count(*) AS n FROM pairs p INDEXED BY pairs_partly CROSS JOIN assignments a ON a.pair_id = p.id AND a.annotator_id = ?
         WHERE p.round_id = ? AND p.labeled > 0 AND p.labeled < p.want AND a.labeled = 1`,
      ).get(annotatorId, roundId) as { n: number }
    ).n;
    const had = expired + labelledWanting;
    const fresh = Math.max(0, this.remaining(roundId) - this.liveClaims(roundId, cutoff) - had);
    return { round: roundId, labeled, ready: open + fresh, sampling: this.pendingCount(roundId) };
  }

  /** The annotator's own labels (never anyone else's), newest first. */
  labelsOf(annotatorId: number, limit = 100): { labelId: number; assignmentId: number; round: number; side: Side; reason: string | null; createdAt: number }[] {
    const rows = this.q('SELECT id, assignment_id, round_id, choice, left_is_a, reason, created_at FROM labels WHERE annotator_id = ? AND undone_at IS NULL ORDER BY id DESC LIMIT ?').all(
      annotatorId,
      limit,
    ) as { id: number; assignment_id: number; round_id: number; choice: Choice; left_is_a: number; reason: string | null; created_at: number }[];
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
    const rows = this.q(
      `SELECT l.id, l.pair_id, l.round_id, an.name, an.simulated, l.choice, l.reason, p.prompt, p.response_a, p.response_b
         FROM labels l JOIN pairs p ON p.id = l.pair_id JOIN annotators an ON an.id = l.annotator_id
         WHERE l.undone_at IS NULL AND (@round IS NULL OR l.round_id = @round) ORDER BY l.id`,
    ).all({ round: round ?? null }) as {
      id: number;
      pair_id: number;
      round_id: number;
      name: string;
      simulated: number;
      choice: Choice;
      reason: string | null;
      prompt: string;
      response_a: string;
      response_b: string;
    }[];
    return rows.map((r) => ({
      labelId: r.id,
      pairId: r.pair_id,
      round: r.round_id,
      annotator: r.name,
      simulated: r.simulated === 1,
      choice: r.choice,
      reason: r.reason,
      prompt: JSON.parse(r.prompt) as PromptValue,
      responseA: r.response_a,
      responseB: r.response_b,
    }));
  }

  /** Every standing label without the texts (for statistics). */
  labelRows(round?: number): LabelRow[] {
    const rows = this.q(
      `SELECT l.id, l.pair_id, l.round_id, an.name, l.choice, l.left_is_a FROM labels l JOIN annotators an ON an.id = l.annotator_id
         WHERE l.undone_at IS NULL AND (@round IS NULL OR l.round_id = @round) ORDER BY l.id`,
    ).all({ round: round ?? null }) as { id: number; pair_id: number; round_id: number; name: string; choice: Choice; left_is_a: number }[];
    return rows.map((r) => ({ labelId: r.id, pairId: r.pair_id, round: r.round_id, annotator: r.name, choice: r.choice, leftIsA: r.left_is_a === 1 }));
  }

  /** Pairs and prompts per round (for statistics). */
  roundCounts(): { round: number; pairs: number; pending: number; failed: number }[] {
    return this.q(
      `SELECT r.id AS round,
           (SELECT count(*) FROM pairs p WHERE p.round_id = r.id) AS pairs,
           (SELECT count(*) FROM prompts q WHERE q.round_id = r.id AND q.status = 'pending') AS pending,
           (SELECT count(*) FROM prompts q WHERE q.round_id = r.id AND q.status = 'failed') AS failed
         FROM rounds r ORDER BY r.id`,
    ).all() as { round: number; pairs: number; pending: number; failed: number }[];
  }
}

/** Whether the k-th pair (0-based) of a round is labeled twice: exactly a fraction `agreement` of pairs are. */
/** Refuses, naming the path, a database path that is a folder or that this process cannot write. */
function checkPath(path: string): void {
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new Error(`${path}: is a folder; --db names the feedback database file (e.g. ${join(path, 'feedback.sqlite')})`);
    writable(path, 'the database file');
    for (const side of ['-wal', '-shm']) if (existsSync(path + side)) writable(path + side, `its ${side} file`);
  }
  const dir = dirname(path);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`${path}: ${dir} is not a folder`);
    writable(dir, 'its folder (SQLite writes the -wal and -shm files beside the database)');
  } else mkdirSync(dir, { recursive: true });
}

function writable(path: string, what: string): void {
  try {
    accessSync(path, constants.W_OK);
  } catch {
    throw new Error(`${path}: ${what} is not writable by this process; the feedback database needs to be written (labels, assignments, sessions)`);
  }
}

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
