import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseCrashkernel, MiB, GiB } from '../../src/kernel/crashkernel.js';

const ram16G = 16 * GiB;

describe('parseCrashkernel: simple form', () => {
  it('is undefined without any crashkernel=', () => {
    expect(parseCrashkernel('ro quiet root=/dev/sda1', ram16G)).toBeUndefined();
    expect(parseCrashkernel('', ram16G)).toBeUndefined();
  });

  it('parses SIZE with memparse units and hex', () => {
    expect(parseCrashkernel('crashkernel=256M', ram16G)).toEqual({ ok: true, size: 256 * MiB, high: false });
    expect(parseCrashkernel('ro crashkernel=1g quiet', ram16G)).toEqual({ ok: true, size: GiB, high: false });
    expect(parseCrashkernel('crashkernel=0x10000000', ram16G)).toEqual({ ok: true, size: 256 * MiB, high: false });
    expect(parseCrashkernel('crashkernel=131072K', ram16G)).toEqual({ ok: true, size: 128 * MiB, high: false });
  });

  it('parses SIZE@OFFSET as a fixed base', () => {
    expect(parseCrashkernel('crashkernel=256M@16M', ram16G)).toEqual({ ok: true, size: 256 * MiB, base: 16 * MiB, high: false });
    expect(parseCrashkernel('crashkernel=128M@0x1000000', ram16G)).toEqual({ ok: true, size: 128 * MiB, base: 16 * MiB, high: false });
  });

  it('rejects trailing junk and non-numbers with the kernel messages', () => {
    expect(parseCrashkernel('crashkernel=256Mx', ram16G)).toEqual({ ok: false, message: 'crashkernel: unrecognized char: x' });
    expect(parseCrashkernel('crashkernel=256M;', ram16G)).toEqual({ ok: false, message: 'crashkernel: unrecognized char: ;' });
    expect(parseCrashkernel('crashkernel=auto', ram16G)).toEqual({ ok: false, message: 'crashkernel: memory value expected' });
    expect(parseCrashkernel('crashkernel= quiet', ram16G)).toEqual({ ok: false, message: 'crashkernel: memory value expected' });
    expect(parseCrashkernel('crashkernel=0', ram16G)).toMatchObject({ ok: false });
  });

  it('uses the last occurrence, found by substring as get_last_crashkernel does', () => {
    expect(parseCrashkernel('crashkernel=128M ro crashkernel=512M', ram16G)).toMatchObject({ ok: true, size: 512 * MiB });
    expect(parseCrashkernel('crashkernel=auto crashkernel=192M', ram16G)).toMatchObject({ ok: true, size: 192 * MiB });
    expect(parseCrashkernel('crashkernel=192M crashkernel=auto', ram16G)).toMatchObject({ ok: false, message: 'crashkernel: memory value expected' });
    // Inside another word still counts.
    expect(parseCrashkernel('crashkernel=128M foo=crashkernel=64M', ram16G)).toMatchObject({ ok: true, size: 64 * MiB });
  });
});

describe('parseCrashkernel: range form', () => {
  const std = 'crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M';

  it('picks the entry whose range holds system RAM (start <= ram < end, END omitted = infinity)', () => {
    expect(parseCrashkernel(std, 2 * GiB)).toEqual({ ok: true, size: 192 * MiB, high: false });
    expect(parseCrashkernel(std, 4 * GiB)).toEqual({ ok: true, size: 256 * MiB, high: false }); // 4G is not < 4G
    expect(parseCrashkernel(std, 1 * GiB)).toEqual({ ok: true, size: 192 * MiB, high: false }); // start is inclusive
    expect(parseCrashkernel(std, 64 * GiB)).toEqual({ ok: true, size: 512 * MiB, high: false });
    expect(parseCrashkernel(std, 2 ** 50)).toEqual({ ok: true, size: 512 * MiB, high: false });
  });

  it('rounds system RAM up to 128 MiB before matching', () => {
    const v = 'crashkernel=0-1G:128M,1G-:256M';
    // Firmware kept 4 KiB: 1 GiB - 4 KiB rounds up to 1 GiB, the second range.
    expect(parseCrashkernel(v, GiB - 4096)).toMatchObject({ ok: true, size: 256 * MiB });
    // 896 MiB + 1 byte rounds to 1 GiB too; exactly 896 MiB stays in the first range.
    expect(parseCrashkernel(v, 896 * MiB + 1)).toMatchObject({ ok: true, size: 256 * MiB });
    expect(parseCrashkernel(v, 896 * MiB)).toMatchObject({ ok: true, size: 128 * MiB });
  });

  it('reports "size resulted in zero bytes" when no range matches', () => {
    expect(parseCrashkernel('crashkernel=1G-4G:192M,4G-:256M', 512 * MiB)).toEqual({ ok: false, message: 'crashkernel size resulted in zero bytes' });
    // Every entry up to the match is checked against RAM, matching or not: 512M >= 512M.
    expect(parseCrashkernel(std, 512 * MiB)).toEqual({ ok: false, message: 'crashkernel: invalid size' });
  });

  it('takes the range form only when a colon comes before the first space', () => {
    expect(parseCrashkernel('crashkernel=256M console=ttyS0,115200:x', ram16G)).toEqual({ ok: true, size: 256 * MiB, high: false });
  });

  it('accepts @OFFSET after the list', () => {
    expect(parseCrashkernel('crashkernel=0-:256M@16M', ram16G)).toEqual({ ok: true, size: 256 * MiB, base: 16 * MiB, high: false });
    expect(parseCrashkernel('crashkernel=1G-4G:192M,4G-:256M@0x2000000', ram16G)).toEqual({ ok: true, size: 256 * MiB, base: 32 * MiB, high: false });
  });

  it('gives the exact kernel error messages', () => {
    const cases: [string, string][] = [
      ['crashkernel=x-1G:128M', 'crashkernel: Memory value expected'],
      ['crashkernel=1G:128M', "crashkernel: '-' expected"],
      ['crashkernel=1G-x:128M', 'crashkernel: Memory value expected'],
      ['crashkernel=2G-1G:128M', 'crashkernel: end <= start'],
      ['crashkernel=2G-2G:128M', 'crashkernel: end <= start'],
      ['crashkernel=1G-2Gx:128M', "crashkernel: ':' expected"],
      ['crashkernel=0-1G:', 'crashkernel: Memory value expected'],
      ['crashkernel=0-:16G', 'crashkernel: invalid size'], // size >= RAM (16 GiB)
      ['crashkernel=0-1G:64M,x', 'crashkernel: Memory value expected'], // an entry after one that did not match
      ['crashkernel=0-:256M@', 'crashkernel: Memory value expected'],
    ];
    for (const [cmdline, message] of cases) expect(parseCrashkernel(cmdline, ram16G), cmdline).toEqual({ ok: false, message });
  });

  it('stops at the first matching entry, as the kernel does (later entries are not even parsed)', () => {
    expect(parseCrashkernel('crashkernel=0-32G:128M,2G-1G:256M', ram16G)).toMatchObject({ ok: true, size: 128 * MiB });
    expect(parseCrashkernel('crashkernel=0-32G:128M,0-:512M', ram16G)).toMatchObject({ ok: true, size: 128 * MiB });
    // A matching entry of size 0 means no reservation, even if a later entry would match too.
    expect(parseCrashkernel('crashkernel=0-32G:0,0-:512M', ram16G)).toEqual({ ok: false, message: 'crashkernel size resulted in zero bytes' });
  });

  describe('against a reference implementation (random valid lists)', () => {
    const units: [string, number][] = [['', 1], ['K', 2 ** 10], ['k', 2 ** 10], ['M', MiB], ['m', MiB], ['G', GiB], ['g', GiB], ['T', 2 ** 40]];
    /** A size written in one of memparse's spellings. */
    const spelled = (bytes: number, how: number): string => {
      const fits = units.filter(([, u]) => bytes % u === 0);
      const [suffix, u] = fits[how % fits.length]!;
      return how % 5 === 4 ? `0x${bytes.toString(16)}` : `${bytes / u}${suffix}`;
    };
    // Ranges often overlap and sizes are sometimes 0 or too large, so first-match and validation order matter.
    const entry = fc.record({
      startMiB: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 8 * 1024 }), fc.integer({ min: 0, max: 300 * 1024 })),
      lenMiB: fc.option(fc.integer({ min: 1, max: 300 * 1024 }), { nil: undefined }),
      sizeMiB: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 16 * 1024 })),
      how: fc.array(fc.nat(20), { minLength: 3, maxLength: 3 }),
    });

    it('chooses the size and base the reference chooses', () => {
      fc.assert(
        fc.property(
          fc.array(entry, { minLength: 1, maxLength: 6 }),
          fc.integer({ min: 512, max: 400 * 1024 }).chain((mib) => fc.tuple(fc.constant(mib), fc.nat(MiB - 1))),
          fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }),
          ([first, ...rest], [ramMiB, extra], baseMiB) => {
            const systemRam = ramMiB * MiB - extra;
            const list = [first!, ...rest];
            const text = list.map((e) => {
              const start = spelled(e.startMiB * MiB, e.how[0]!);
              const end = e.lenMiB === undefined ? '' : spelled((e.startMiB + e.lenMiB) * MiB, e.how[1]!);
              return `${start}-${end}:${spelled(e.sizeMiB * MiB, e.how[2]!)}`;
            }).join(',');
            const cmdline = `ro crashkernel=${text}${baseMiB === undefined ? '' : `@${baseMiB}M`} quiet`;

            // Reference: kernel/crash_reserve.c parse_crashkernel_mem().
            const ram = Math.ceil(systemRam / (128 * MiB)) * 128 * MiB;
            let want: { ok: true; size: number; base?: number; high: false } | { ok: false; message: string } | undefined;
            for (const e of list) {
              const start = e.startMiB * MiB;
              const end = e.lenMiB === undefined ? Infinity : (e.startMiB + e.lenMiB) * MiB;
              if (e.sizeMiB * MiB >= ram) {
                want = { ok: false, message: 'crashkernel: invalid size' };
                break;
              }
              if (start <= ram && ram < end) {
                want = e.sizeMiB === 0
                  ? { ok: false, message: 'crashkernel size resulted in zero bytes' }
                  : baseMiB === undefined ? { ok: true, size: e.sizeMiB * MiB, high: false } : { ok: true, size: e.sizeMiB * MiB, base: baseMiB * MiB, high: false };
                break;
              }
            }
            want ??= { ok: false, message: 'crashkernel size resulted in zero bytes' };
            expect(parseCrashkernel(cmdline, systemRam), cmdline).toEqual(want);
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});

describe('parseCrashkernel: ,high and ,low', () => {
  it('parses SIZE,high alone, leaving the low part to the default', () => {
    expect(parseCrashkernel('crashkernel=1G,high', ram16G)).toEqual({ ok: true, size: GiB, high: true });
  });

  it('adds SIZE,low when given, including 0 to turn the low part off', () => {
    expect(parseCrashkernel('crashkernel=1G,high crashkernel=128M,low', ram16G)).toEqual({ ok: true, size: GiB, high: true, lowSize: 128 * MiB });
    expect(parseCrashkernel('crashkernel=128M,low crashkernel=1G,high', ram16G)).toEqual({ ok: true, size: GiB, high: true, lowSize: 128 * MiB });
    expect(parseCrashkernel('crashkernel=1G,high crashkernel=0,low', ram16G)).toEqual({ ok: true, size: GiB, high: true, lowSize: 0 });
  });

  it('ignores ,low without ,high', () => {
    expect(parseCrashkernel('crashkernel=256M,low', ram16G)).toBeUndefined();
  });

  it('uses the plain form when both are present, whatever the order', () => {
    expect(parseCrashkernel('crashkernel=1G,high crashkernel=256M', ram16G)).toEqual({ ok: true, size: 256 * MiB, high: false });
    expect(parseCrashkernel('crashkernel=256M crashkernel=1G,high crashkernel=64M,low', ram16G)).toEqual({ ok: true, size: 256 * MiB, high: false });
  });

  it('takes the last of each suffix class', () => {
    expect(parseCrashkernel('crashkernel=512M,high crashkernel=64M,low crashkernel=2G,high crashkernel=96M,low', ram16G))
      .toEqual({ ok: true, size: 2 * GiB, high: true, lowSize: 96 * MiB });
  });

  it('rejects a bad ,high or ,low value, and a zero ,high size', () => {
    expect(parseCrashkernel('crashkernel=auto,high', ram16G)).toEqual({ ok: false, message: 'crashkernel: memory value expected' });
    expect(parseCrashkernel('crashkernel=1G,high crashkernel=lots,low', ram16G)).toEqual({ ok: false, message: 'crashkernel: memory value expected' });
    expect(parseCrashkernel('crashkernel=0,high', ram16G)).toMatchObject({ ok: false });
  });
});
