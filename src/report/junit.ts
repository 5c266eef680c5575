// JUnit XML for CI: one testsuite per sweep, one testcase per cell. A cell
// fails when its scenario's `expect` did not hold; a cell without one only
// reports. Everything from results is escaped, and characters XML 1.0 cannot
// carry at all are replaced.

import type { MatrixResult } from '../scenario/matrix-result.js';

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  return s
    // Control characters other than tab, newline and carriage return, lone surrogates and U+FFFE/U+FFFF are not XML.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Escapes an attribute value, keeping line breaks as character references. */
function attr(s: string): string {
  return xmlEscape(s).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

export function renderMatrixJunit(m: MatrixResult): string {
  const failures = m.cells.filter((c) => c.expectationMet === false).length;
  const suite = m.shard ? `${m.name} (shard ${m.shard.index}/${m.shard.count})` : m.name;
  const classname = `kdumpsim.matrix.${m.name}`;
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<testsuites name="kdumpsim matrix" tests="${m.cells.length}" failures="${failures}" errors="0">`);
  out.push(`  <testsuite name="${attr(suite)}" tests="${m.cells.length}" failures="${failures}" errors="0" skipped="0">`);
  out.push('    <properties>');
  out.push(`      <property name="total" value="${m.total}"/>`);
  out.push(`      <property name="axes" value="${attr(m.axes.map((a) => `${a.name}: ${a.labels.join(' ')}`).join('; '))}"/>`);
  out.push('    </properties>');
  for (const c of m.cells) {
    out.push(`    <testcase classname="${attr(classname)}" name="${attr(c.id)}">`);
    if (c.expectationMet === false) {
      const diffs = c.expectationDifferences;
      out.push(`      <failure type="expectation" message="${attr(diffs[0] ?? `expectation not met (verdict ${c.verdict})`)}">${xmlEscape(diffs.join('\n'))}</failure>`);
    }
    const body = [`verdict: ${c.verdict}`, `reason: ${c.reason}`, `seed: ${c.seed}`, 'chain:', ...c.chain.map((l) => `  ${l}`)].join('\n');
    out.push(`      <system-out>${xmlEscape(body)}</system-out>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>');
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
