import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { VirtualClock } from '../../src/platform/clock.js';

describe('VirtualClock', () => {
  it('fires events in time order, whatever order they were scheduled in', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.schedule(300, 'c', () => log.push(`c@${c.now}`));
    c.schedule(100, 'a', () => log.push(`a@${c.now}`));
    c.schedule(200, 'b', () => log.push(`b@${c.now}`));
    c.advance(1000);
    expect(log).toEqual(['a@100', 'b@200', 'c@300']);
    expect(c.now).toBe(1000);
    expect(c.eventsFired).toBe(3);
  });

  it('fires events due at the same time in scheduling order', () => {
    const c = new VirtualClock();
    const log: number[] = [];
    for (let i = 0; i < 20; i++) c.scheduleAt(500, `e${i}`, () => log.push(i));
    c.advanceTo(500);
    expect(log).toEqual([...Array(20).keys()]);
  });

  it('does not fire events that are not yet due, and fires them on a later advance', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.schedule(100, 'early', () => log.push('early'));
    c.schedule(101, 'late', () => log.push('late'));
    c.advanceTo(100);
    expect(log).toEqual(['early']);
    expect(c.pending).toBe(1);
    c.advanceTo(100); // no time passes, nothing new falls due
    expect(log).toEqual(['early']);
    c.advance(1);
    expect(log).toEqual(['early', 'late']);
    expect(c.pending).toBe(0);
  });

  it('never fires a cancelled event, and cancelling does not disturb the others', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.schedule(10, 'a', () => log.push('a'));
    const b = c.schedule(20, 'b', () => log.push('b'));
    c.schedule(20, 'b2', () => log.push('b2'));
    c.schedule(30, 'c', () => log.push('c'));
    b.cancel();
    c.advance(100);
    expect(log).toEqual(['a', 'b2', 'c']);
    expect(c.eventsFired).toBe(3);
  });

  it('lets a handler cancel a later event', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    const victims: { cancel(): void }[] = [];
    c.schedule(10, 'canceller', () => {
      log.push('canceller');
      for (const v of victims) v.cancel();
    });
    victims.push(c.schedule(20, 'victim', () => log.push('victim')));
    c.advance(50);
    expect(log).toEqual(['canceller']);
  });

  it('fires events that handlers schedule when they fall due within the same advanceTo', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.schedule(100, 'first', () => {
      log.push(`first@${c.now}`);
      c.schedule(50, 'child', () => {
        log.push(`child@${c.now}`);
        c.schedule(0, 'grandchild', () => log.push(`grandchild@${c.now}`));
      });
      c.schedule(10_000, 'too-late', () => log.push('too-late'));
    });
    c.schedule(120, 'middle', () => log.push(`middle@${c.now}`));
    c.advanceTo(1000);
    expect(log).toEqual(['first@100', 'middle@120', 'child@150', 'grandchild@150']);
    expect(c.now).toBe(1000);
    expect(c.pending).toBe(1);
  });

  it('runs a periodic timer the expected number of times', () => {
    const c = new VirtualClock();
    const times: number[] = [];
    const tick = (): void => {
      times.push(c.now);
      c.schedule(250, 'tick', tick);
    };
    c.schedule(250, 'tick', tick);
    c.advanceTo(2000);
    expect(times).toEqual([250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
  });

  it('clamps an event scheduled in the past to now, and never moves time backwards', () => {
    const c = new VirtualClock();
    c.advanceTo(1000);
    const seen: number[] = [];
    c.scheduleAt(10, 'past', () => seen.push(c.now));
    c.advanceTo(500); // earlier than now: ignored
    expect(c.now).toBe(1000);
    expect(seen).toEqual([]);
    c.advance(0);
    expect(seen).toEqual([1000]);
  });

  it('rejects a negative delay with a RangeError', () => {
    const c = new VirtualClock();
    expect(() => c.schedule(-1, 'neg', () => {})).toThrow(RangeError);
    expect(() => c.schedule(Number.NaN, 'nan', () => {})).toThrow(RangeError);
  });

  it('a handler that waits (re-entrant advance) moves time but keeps the firing order', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.schedule(100, 'waiter', () => {
      log.push(`waiter@${c.now}`);
      c.advance(50); // e.g. a udelay() inside a handler
      log.push(`waiter-done@${c.now}`);
    });
    c.schedule(120, 'other', () => log.push(`other@${c.now}`));
    c.advanceTo(1000);
    expect(log).toEqual(['waiter@100', 'waiter-done@150', 'other@150']);
  });

  it('is deterministic: the same schedule gives the same firing log', () => {
    const run = (): string[] => {
      const c = new VirtualClock();
      const log: string[] = [];
      for (let i = 0; i < 50; i++) {
        const d = (i * 7919) % 97;
        c.schedule(d, `e${i}`, () => {
          log.push(`${i}@${c.now}`);
          if (i % 3 === 0) c.schedule((i * 31) % 13, `child${i}`, () => log.push(`c${i}@${c.now}`));
        });
      }
      c.advanceTo(200);
      return log;
    };
    const a = run();
    expect(a.length).toBeGreaterThan(50);
    expect(run()).toEqual(a);
  });

  describe('against a reference (sort by time, then scheduling order)', () => {
    type Op =
      | { kind: 'schedule'; at: number }
      | { kind: 'cancel'; which: number }
      | { kind: 'advance'; to: number };

    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('schedule' as const), at: fc.integer({ min: 0, max: 60 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), which: fc.nat(200) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), to: fc.integer({ min: 0, max: 60 }) }) },
    );

    it('fires exactly the due, uncancelled events, ordered by (time, seq), at their own times', () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
          const clock = new VirtualClock();
          const fired: { id: number; t: number }[] = [];
          const handles: { cancel(): void }[] = [];

          // The reference: a plain list of (at, seq, cancelled, fired).
          const ref: { id: number; at: number; cancelled: boolean; fired: boolean }[] = [];
          const refFired: { id: number; t: number }[] = [];
          let refNow = 0;

          for (const o of ops) {
            if (o.kind === 'schedule') {
              const id = ref.length;
              handles.push(clock.scheduleAt(o.at, `e${id}`, () => fired.push({ id, t: clock.now })));
              ref.push({ id, at: Math.max(o.at, refNow), cancelled: false, fired: false });
            } else if (o.kind === 'cancel') {
              if (ref.length === 0) continue;
              const i = o.which % ref.length;
              handles[i]!.cancel();
              ref[i]!.cancelled = true;
            } else {
              clock.advanceTo(o.to);
              if (o.to < refNow) continue;
              const due = ref
                .filter((e) => !e.cancelled && !e.fired && e.at <= o.to)
                .sort((a, b) => a.at - b.at || a.id - b.id);
              for (const e of due) {
                e.fired = true;
                refFired.push({ id: e.id, t: e.at });
              }
              refNow = o.to;
            }
            expect(clock.now).toBe(refNow);
          }
          expect(fired).toEqual(refFired);
          expect(clock.eventsFired).toBe(refFired.length);
        }),
        { numRuns: 300 },
      );
    });
  });
});
