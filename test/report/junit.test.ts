import { describe, expect, it } from 'vitest';
import { renderMatrixJunit, xmlEscape } from '../../src/report/junit.js';
import type { MatrixCell, MatrixResult } from '../../src/scenario/matrix-result.js';
import { summarize } from '../../src/scenario/matrix.js';
import { smallScenario } from '../helpers/small-scenario.js';

// A small, strict XML reader: enough to check structure (well-formed nesting,
// attributes, text) without trusting regexes over the output.
interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]!;
  });
}

function parseXml(xml: string): XmlElement {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`Malformed XML at ${i}: ${what}: ${JSON.stringify(xml.slice(i, i + 40))}`);
  };
  const skipWs = (): void => {
    while (i < xml.length && /\s/.test(xml[i]!)) i++;
  };
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  const element = (): XmlElement => {
    skipWs();
    const open = /^<([A-Za-z_][\w.-]*)/.exec(xml.slice(i));
    if (!open) return fail('expected an element');
    i += open[0].length;
    const el: XmlElement = { name: open[1]!, attrs: {}, children: [], text: '' };
    for (;;) {
      skipWs();
      if (xml.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (xml[i] === '>') {
        i++;
        break;
      }
      const a = /^([A-Za-z_][\w.-]*)="([^"<]*)"/.exec(xml.slice(i));
      if (!a) return fail('expected an attribute');
      if (a[1]! in el.attrs) fail(`duplicate attribute ${a[1]}`);
      if (/&(?!(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);)/.test(a[2]!)) fail('bare & in attribute');
      el.attrs[a[1]!] = decode(a[2]!);
      i += a[0].length;
    }
    for (;;) {
      const lt = xml.indexOf('<', i);
      if (lt < 0) fail('unclosed element');
      const raw = xml.slice(i, lt);
      if (/&(?!(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);)/.test(raw) || raw.includes('>')) fail('unescaped text');
      el.text += decode(raw);
      i = lt;
      if (xml.startsWith('</', i)) {
        const close = `</${el.name}>`;
        if (!xml.startsWith(close, i)) fail(`expected ${close}`);
        i += close.length;
        return el;
      }
      el.children.push(element());
    }
  };
  const root = element();
  skipWs();
  if (i !== xml.length) fail('content after the root element');
  return root;
}

const nasty = 'log <script>alert("x")</script> & \'quotes\' ]]> \u0001bell';

function cell(index: number, id: string, met: boolean | null, extra: Partial<MatrixCell> = {}): MatrixCell {
  return {
    index,
    id,
    coords: { a: id },
    verdict: met === false ? 'crash-kernel-panic' : 'dump-complete',
    reason: `reason ${index}`,
    expectationMet: met,
    expectationDifferences: met === false ? ['verdict: expected dump-complete, got crash-kernel-panic', `chain: no step contains "${nasty}"`] : [],
    chain: ['[    1.000000] kernel: first step', `[    2.000000] crash-kernel: ${nasty}`],
    oracle: { pagesExpected: 1, pagesCaptured: 1, pagesCorrect: 1, pagesMissing: 0, pagesCiphertext: 0, pagesChangedAfterPanic: 0, pagesWrong: 0 },
    seed: 1,
    input: smallScenario(),
    ...extra,
  };
}

function result(cells: MatrixCell[]): MatrixResult {
  return {
    kind: 'kdumpsim-matrix-result',
    name: 'junit & <test>',
    axes: [{ name: 'a', labels: cells.map((c) => c.id) }],
    rows: [],
    columns: ['a'],
    total: cells.length,
    cells,
    summary: summarize(cells),
  };
}

describe('JUnit XML of a matrix', () => {
  const m = result([cell(0, 'a=met', true), cell(1, 'a=failed & <odd>', false), cell(2, 'a=no-expect', null), cell(3, 'a=failed-too', false)]);
  const xml = renderMatrixJunit(m);
  const root = parseXml(xml);

  it('is well-formed: one testsuite whose counts match its testcases', () => {
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(root.name).toBe('testsuites');
    const suites = root.children.filter((c) => c.name === 'testsuite');
    expect(suites).toHaveLength(1);
    const suite = suites[0]!;
    const cases = suite.children.filter((c) => c.name === 'testcase');
    expect(suite.attrs['name']).toBe('junit & <test>');
    expect(Number(suite.attrs['tests'])).toBe(cases.length);
    expect(cases).toHaveLength(4);
    const failing = cases.filter((c) => c.children.some((x) => x.name === 'failure'));
    expect(Number(suite.attrs['failures'])).toBe(failing.length);
    expect(failing).toHaveLength(2);
    expect(Number(root.attrs['tests'])).toBe(4);
    expect(Number(root.attrs['failures'])).toBe(2);
    expect(suite.attrs['errors']).toBe('0');
  });

  it('one testcase per cell, names unique and equal to the cell ids; a failure only where an expect did not hold', () => {
    const cases = root.children[0]!.children.filter((c) => c.name === 'testcase');
    const names = cases.map((c) => c.attrs['name']);
    expect(names).toEqual(m.cells.map((c) => c.id));
    expect(new Set(names).size).toBe(names.length);
    for (const [k, tc] of cases.entries()) {
      const c = m.cells[k]!;
      const failure = tc.children.find((x) => x.name === 'failure');
      expect(failure !== undefined).toBe(c.expectationMet === false);
      if (failure) {
        expect(failure.attrs['message']).toBe(c.expectationDifferences[0]);
        expect(failure.text).toContain('chain: no step contains');
      }
      const out = tc.children.find((x) => x.name === 'system-out');
      expect(out?.text).toContain(`verdict: ${c.verdict}`);
      expect(out?.text).toContain('[    1.000000] kernel: first step');
    }
  });

  it('escapes everything: markup in logs comes back as the same text, and XML-illegal characters are replaced', () => {
    expect(xml).not.toContain('<script>');
    expect(xml).not.toContain('<odd>');
    expect(xml).not.toContain('\u0001');
    const cases = root.children[0]!.children.filter((c) => c.name === 'testcase');
    const out = cases[0]!.children.find((x) => x.name === 'system-out')!;
    expect(out.text).toContain(nasty.replace('\u0001', '\ufffd'));
    expect(cases[1]!.attrs['name']).toBe('a=failed & <odd>');
  });

  it('xmlEscape handles the five specials and leaves other text alone', () => {
    expect(xmlEscape(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
    expect(xmlEscape('plain text: 64M ✓')).toBe('plain text: 64M ✓');
    expect(xmlEscape('a\u0000b\ud800c')).toBe('a\ufffdb\ufffdc');
  });

  it('a shard says so in the suite name; no cells still makes a valid document', () => {
    const shard = { ...result([cell(0, 'a=1', true)]), shard: { index: 2, count: 5 } };
    expect(parseXml(renderMatrixJunit(shard)).children[0]!.attrs['name']).toBe('junit & <test> (shard 2/5)');
    const empty = parseXml(renderMatrixJunit(result([])));
    expect(empty.children[0]!.attrs['tests']).toBe('0');
  });
});
