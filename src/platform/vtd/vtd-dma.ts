// The DMA path through a VT-d unit. Devices are named in the machine (the
// NIC by its BDF string); the unit knows them by 16-bit source id, taken
// from an explicit map (what the DMAR table's device scope would say) or
// parsed from a "bb:dd.f" / "ssss:bb:dd.f" name. With translation off
// (GSTS.TES clear) the unit is not in the way and the port it was given
// carries the request unchanged.

import type { DmaPort, DmaResult } from '../dma-port.js';
import type { Trace } from '../trace.js';
import type { Vtd } from './vtd.js';

const BDF = /^(?:[0-9a-f]{4}:)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;

/** The source id a "bb:dd.f" name stands for, or undefined. */
export function sourceIdFromBdf(name: string): number | undefined {
  const m = BDF.exec(name);
  if (m === null) return undefined;
  const dev = parseInt(m[2]!, 16);
  if (dev > 0x1f) return undefined;
  return (parseInt(m[1]!, 16) << 8) | (dev << 3) | parseInt(m[3]!, 10);
}

export class VtdDma implements DmaPort {
  readonly unit: Vtd;
  readonly #sourceIds: ReadonlyMap<string, number>;
  readonly #untranslated: DmaPort;
  readonly #trace: Trace;

  constructor(unit: Vtd, sourceIds: Readonly<Record<string, number>>, untranslated: DmaPort, trace: Trace) {
    for (const [name, id] of Object.entries(sourceIds)) {
      if (!(Number.isInteger(id) && id >= 0 && id <= 0xffff)) throw new RangeError(`Cannot route DMA of "${name}" through ${unit.name}: source id ${id} is not 0..0xffff`);
    }
    this.unit = unit;
    this.#sourceIds = new Map(Object.entries(sourceIds));
    this.#untranslated = untranslated;
    this.#trace = trace;
  }

  sourceIdOf(device: string): number | undefined {
    return this.#sourceIds.get(device) ?? sourceIdFromBdf(device);
  }

  write(device: string, busAddr: number, data: Uint8Array): DmaResult {
    return this.#access(device, busAddr, data, true);
  }

  read(device: string, busAddr: number, dst: Uint8Array): DmaResult {
    return this.#access(device, busAddr, dst, false);
  }

  #access(device: string, busAddr: number, buf: Uint8Array, write: boolean): DmaResult {
    if (!this.unit.translationEnabled) return write ? this.#untranslated.write(device, busAddr, buf) : this.#untranslated.read(device, busAddr, buf);
    const sid = this.sourceIdOf(device);
    if (sid === undefined) {
      const detail = `${device} has no source id behind ${this.unit.name}`;
      this.#trace.record(this.unit.name, 'vtd-unknown-requester', detail, { device });
      return { ok: false, fault: 'unknown-requester', detail };
    }
    return this.unit.dma(device, sid, busAddr, buf, write);
  }
}
