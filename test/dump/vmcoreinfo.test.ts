import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { VmcoreFormatError } from '../../src/util/errors.js';

// A few lines from a real 6.1 kdump VMCOREINFO, in emission order.
const REAL = `OSRELEASE=6.1.0-56-amd64
BUILD-ID=eb4fbcd037e7253717950bf2b93bd5566f47c56f
PAGESIZE=4096
SYMBOL(init_uts_ns)=ffffffff901fb000
OFFSET(uts_namespace.name)=0
SYMBOL(swapper_pg_dir)=ffffffff90010000
NUMBER(VMALLOC_START)=0xffffb51340000000
LENGTH(mem_section)=4096
SIZE(page)=64
OFFSET(page._refcount)=52
NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129
NUMBER(phys_base)=58720256
KERNELOFFSET=d600000
CRASHTIME=1795439369
`;

const keyChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_().-'.split(''));
const key = fc.string({ unit: keyChar, minLength: 1, maxLength: 30 });
const value = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const name = fc.string({ unit: keyChar, minLength: 1, maxLength: 20 });

describe('VMCOREINFO', () => {
  it('reads the kernel formats of a real 6.1 dump', () => {
    const info = VmcoreInfo.parse(REAL);
    expect(info.osrelease).toBe('6.1.0-56-amd64');
    expect(info.pageSize).toBe(4096);
    expect(info.symbol('swapper_pg_dir')).toBe(0xffffffff90010000n);
    expect(info.number('VMALLOC_START')).toBe(0xffffb51340000000n);
    expect(info.number('PAGE_BUDDY_MAPCOUNT_VALUE')).toBe(-129n);
    expect(info.number('phys_base')).toBe(58720256n);
    expect(info.size('page')).toBe(64);
    expect(info.offset('page._refcount')).toBe(52);
    expect(info.length('mem_section')).toBe(4096);
    expect(info.kernelOffset).toBe(0xd600000n);
    expect(info.crashTime).toBe(1795439369n);
    expect(info.symbol('nonexistent')).toBeUndefined();
    expect(info.toText()).toBe(REAL);
  });

  it('writes values the way the kernel prints them', () => {
    const info = new VmcoreInfo()
      .set('OSRELEASE', '6.1.0')
      .setSymbol('init_top_pgt', 0xffffffff8c00a000n)
      .setNumber('phys_base', -1073741824)
      .setSize('page', 64)
      .setOffset('page.flags', 0n)
      .setLength('mem_section', 2048);
    expect(info.toText()).toBe(
      'OSRELEASE=6.1.0\nSYMBOL(init_top_pgt)=ffffffff8c00a000\nNUMBER(phys_base)=-1073741824\nSIZE(page)=64\nOFFSET(page.flags)=0\nLENGTH(mem_section)=2048\n',
    );
  });

  it('set keeps the line in place and drops later duplicates', () => {
    const info = VmcoreInfo.parse('A=1\nB=2\nA=3\nC=4\n');
    expect(info.get('A')).toBe('1');
    info.set('A', '9');
    expect(info.toText()).toBe('A=9\nB=2\nC=4\n');
    info.set('D', '5');
    expect(info.toText()).toBe('A=9\nB=2\nC=4\nD=5\n');
    expect(info.delete('B')).toBe(true);
    expect(info.entries()).toEqual([['A', '9'], ['C', '4'], ['D', '5']]);
  });

  it('ignores text after the last newline and lines without "="', () => {
    const info = VmcoreInfo.parse('OSRELEASE=6.1\ngarbage\n\nPAGESIZE=40');
    expect(info.entries()).toEqual([['OSRELEASE', '6.1']]);
  });

  it('round-trips any ordered set of lines', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: (kv) => kv[0], maxLength: 30 }), (lines) => {
        const info = new VmcoreInfo();
        for (const [k, v] of lines) info.set(k, v);
        const text = info.toText();
        expect(text).toBe(lines.map(([k, v]) => `${k}=${v}\n`).join(''));
        const back = VmcoreInfo.parse(text);
        expect(back.entries()).toEqual(lines);
        expect(back.toText()).toBe(text);
        expect(VmcoreInfo.fromBytes(info.toBytes()).toText()).toBe(text);
      }),
    );
  });

  it('typed setters and getters are inverse', () => {
    fc.assert(
      fc.property(
        name,
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
        fc.nat(),
        (n, sym, num, small) => {
          const info = new VmcoreInfo().setSymbol(n, sym).setNumber(n, num).setSize(n, small).setOffset(n, small + 1).setLength(n, small + 2);
          const back = VmcoreInfo.parse(info.toText());
          expect(back.symbol(n)).toBe(sym);
          expect(back.get(`SYMBOL(${n})`)).toBe(sym.toString(16));
          expect(back.number(n)).toBe(num);
          expect(back.size(n)).toBe(small);
          expect(back.offset(n)).toBe(small + 1);
          expect(back.length(n)).toBe(small + 2);
        },
      ),
    );
  });

  it('names the file and offset of a malformed value', () => {
    const info = VmcoreInfo.parse('OSRELEASE=6.1\nSYMBOL(x)=zz\nSIZE(y)=-1\n', { file: 'v.core', offset: 0x2000 });
    expect(() => info.symbol('x')).toThrow(VmcoreFormatError);
    expect(() => info.symbol('x')).toThrow('Cannot read VMCOREINFO SYMBOL(x) at offset 0x200e of "v.core": value "zz" is not a 64-bit hexadecimal number');
    expect(() => info.size('y')).toThrow(/SIZE\(y\) at offset 0x201b of "v\.core": value "-1"/);
  });

  it('refuses keys and values that would break the line format', () => {
    const info = new VmcoreInfo();
    expect(() => info.set('A=B', '1')).toThrow(RangeError);
    expect(() => info.set('A', '1\n2')).toThrow(RangeError);
    expect(() => info.setSymbol('x', -1n)).toThrow(RangeError);
    expect(() => info.setSize('x', -1)).toThrow(RangeError);
  });
});
