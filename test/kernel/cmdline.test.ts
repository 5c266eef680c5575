import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Cmdline } from '../../src/kernel/cmdline.js';

describe('Cmdline', () => {
  it('gives the value of the last key=, true for a bare flag, undefined when absent', () => {
    const c = new Cmdline('  ro root=/dev/sda1 quiet nr_cpus=4   console=tty0 nr_cpus=1 ');
    expect(c.raw).toBe('ro root=/dev/sda1 quiet nr_cpus=4   console=tty0 nr_cpus=1');
    expect(c.get('nr_cpus')).toBe('1');
    expect(c.get('root')).toBe('/dev/sda1');
    expect(c.get('quiet')).toBe(true);
    expect(c.get('ro')).toBe(true);
    expect(c.get('splash')).toBeUndefined();
    expect(c.has('quiet')).toBe(true);
    expect(c.has('splash')).toBe(false);
  });

  it('matches whole keys only', () => {
    const c = new Cmdline('iommu=pt amd_iommu=off intel_iommu_x=1 reset_devices');
    expect(c.get('iommu')).toBe('pt');
    expect(c.get('amd_iommu')).toBe('off');
    expect(c.get('intel_iommu')).toBeUndefined();
    expect(c.get('reset')).toBeUndefined();
    expect(c.has('reset_devices')).toBe(true);
  });

  it('keeps everything after the first = as the value, and an empty value as empty', () => {
    const c = new Cmdline('crashkernel=1G-4G:192M,4G-:256M root=UUID=abc= foo=');
    expect(c.get('crashkernel')).toBe('1G-4G:192M,4G-:256M');
    expect(c.get('root')).toBe('UUID=abc=');
    expect(c.get('foo')).toBe('');
  });

  it('the last occurrence wins between a flag and a key=value', () => {
    expect(new Cmdline('irqpoll irqpoll=0').get('irqpoll')).toBe('0');
    expect(new Cmdline('irqpoll=0 irqpoll').get('irqpoll')).toBe(true);
  });

  it('with() replaces every occurrence of the key and appends the new word', () => {
    const c = new Cmdline('nr_cpus=8 ro nr_cpus=4 quiet');
    const d = c.with('nr_cpus=1');
    expect(d.raw).toBe('ro quiet nr_cpus=1');
    expect(c.raw).toBe('nr_cpus=8 ro nr_cpus=4 quiet'); // the original is untouched
    expect(d.with('reset_devices').raw).toBe('ro quiet nr_cpus=1 reset_devices');
    expect(d.with('quiet').raw).toBe('ro nr_cpus=1 quiet');
    expect(new Cmdline('').with('irqpoll').raw).toBe('irqpoll');
  });

  it('with() does not remove keys that merely share a prefix', () => {
    expect(new Cmdline('iommu=pt amd_iommu=on iommu.passthrough=1').with('iommu=off').raw).toBe('amd_iommu=on iommu.passthrough=1 iommu=off');
  });

  it('without() removes the key in both forms and nothing else', () => {
    const c = new Cmdline('crashkernel=256M ro crashkernel quiet crashkernel_x=1');
    expect(c.without('crashkernel').raw).toBe('ro quiet crashkernel_x=1');
    expect(c.without('absent').raw).toBe(c.raw.split(/\s+/).join(' '));
    expect(new Cmdline('quiet').without('quiet').raw).toBe('');
    expect(new Cmdline('quiet').without('quiet').get('quiet')).toBeUndefined();
  });

  it('with(k=v) then get(k) is v, and other keys keep their values (property)', () => {
    const key = fc.stringMatching(/^[a-z_][a-z0-9_.]{0,8}$/);
    const word = fc.tuple(key, fc.option(fc.stringMatching(/^[a-zA-Z0-9,:@=./-]{0,8}$/), { nil: undefined }))
      .map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
    fc.assert(
      fc.property(fc.array(word, { maxLength: 8 }), key, fc.stringMatching(/^[a-zA-Z0-9,:@./-]{0,8}$/), (words, k, v) => {
        const c = new Cmdline(words.join(' '));
        const d = c.with(`${k}=${v}`);
        expect(d.get(k)).toBe(v);
        expect(d.without(k).has(k)).toBe(false);
        for (const w of words) {
          const other = w.split('=')[0]!;
          if (other !== k) expect(d.get(other)).toEqual(c.get(other));
        }
        expect(new Cmdline(d.toString()).raw).toBe(d.raw);
      }),
    );
  });
});
