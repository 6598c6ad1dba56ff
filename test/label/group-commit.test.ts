// Group commit (src/label/group-commit.ts): the writes of one turn of the event loop share one transaction and one
// commit; each settles only after that commit (another connection already sees it); a write that fails is undone
// alone; while another process holds the write lock nothing runs, the writes land once it is released, and those
// still locked out at their deadline get BusyError with nothing changed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BusyError } from '../../src/label/busy.js';
import { GroupCommit } from '../../src/label/group-commit.js';
import { cleanTmp, tmp } from './helpers.js';

after(cleanTmp);

function open(): { db: Database.Database; path: string } {
  const path = join(tmp(), 'g.sqlite');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 20');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  return { db, path };
}

test('writes of one turn share one commit; each settles after it; a failing write is undone alone', async () => {
  const { db, path } = open();
  const reader = new Database(path, { readonly: true });
  try {
    const g = new GroupCommit(db, 1000);
    const ins = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    const seenByOther: number[] = [];
    const writes = Array.from({ length: 50 }, (_, k) =>
      g
        .run(() => {
          if (k === 17) {
            ins.run(1000 + k, 'half done'); // undone with its savepoint
            throw new Error('write 17 refused');
          }
          return Number(ins.run(k, `v${k}`).lastInsertRowid);
        })
        .then((id) => {
          // settled after the commit: another connection sees the row already
          seenByOther.push((reader.prepare('SELECT count(*) AS n FROM t WHERE k = ?').get(id) as { n: number }).n);
          return id;
        }),
    );
    const results = await Promise.allSettled(writes);
    assert.deepEqual(g.stats, { batches: 1, writes: 50, largest: 50 });
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 49);
    assert.match(String((results[17] as PromiseRejectedResult).reason), /write 17 refused/);
    assert.deepEqual(seenByOther, Array(49).fill(1));
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 49);
    assert.equal(db.prepare('SELECT 1 FROM t WHERE k = 1017').get(), undefined, 'the failed write left nothing');
    // a later turn is a new batch
    await g.run(() => ins.run(500, 'later'));
    assert.equal(g.stats.batches, 2);
  } finally {
    reader.close();
    db.close();
  }
});

test('while another connection holds the write lock: the event loop runs, writes land after it is released, or fail at their deadline', async () => {
  const { db, path } = open();
  const other = new Database(path);
  try {
    const g = new GroupCommit(db, 600);
    const ins = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    other.exec('BEGIN IMMEDIATE');
    const t0 = Date.now();
    const late = g.run(() => ins.run(1, 'waits'));
    // the loop is free meanwhile: timers fire on time
    const lag = await new Promise<number>((r) => {
      const at = Date.now();
      setTimeout(() => r(Date.now() - at - 20), 20);
    });
    assert.ok(lag < 100, `a 20 ms timer was ${lag} ms late`);
    await assert.rejects(late, (e: unknown) => e instanceof BusyError && /locked by another process/.test((e as Error).message));
    assert.ok(Date.now() - t0 >= 550, 'it waited about its deadline');
    assert.equal((other.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 0);
    // released while a write waits: it lands
    const lands = g.run(() => ins.run(2, 'lands'));
    await new Promise((r) => setTimeout(r, 100));
    other.exec('ROLLBACK');
    await lands;
    assert.deepEqual(db.prepare('SELECT k FROM t').all(), [{ k: 2 }]);
  } finally {
    if (other.inTransaction) other.exec('ROLLBACK');
    other.close();
    db.close();
  }
});
