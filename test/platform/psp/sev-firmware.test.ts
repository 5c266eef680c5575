import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  SEV_CMD_INIT, SEV_CMD_SHUTDOWN, SEV_CMD_DF_FLUSH, SEV_CMD_PLATFORM_STATUS,
  SEV_CMD_SNP_INIT, SEV_CMD_SNP_INIT_EX, SEV_CMD_SNP_SHUTDOWN, SEV_CMD_SNP_SHUTDOWN_EX, SEV_CMD_SNP_DF_FLUSH,
  SEV_CMD_SNP_DECOMMISSION, SEV_CMD_SNP_GCTX_CREATE, SEV_CMD_SNP_ACTIVATE, SEV_CMD_SNP_PLATFORM_STATUS,
  SEV_RET_SUCCESS, SEV_RET_INVALID_PLATFORM_STATE, SEV_RET_DFFLUSH_REQUIRED, SEV_RET_WBINVD_REQUIRED,
  SEV_RET_INVALID_COMMAND, SEV_RET_INVALID_CONFIG, SEV_RET_RMP_INIT_REQUIRED, SEV_RET_INVALID_PARAM,
  SEV_RET_INVALID_LEN, SEV_RET_ASID_OWNED, SEV_RET_INVALID_ASID, SEV_RET_INVALID_GUEST,
  SEV_RET_INVALID_PAGE_STATE, SEV_RET_HWSEV_RET_UNSAFE, SEV_RET_NAMES, SEV_STATE_INIT, SEV_STATE_UNINIT,
  SNP_INIT_EX_INIT_RMP, SNP_INIT_EX_LIST_PADDR_EN, SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN,
  SEV_CMD_SNP_LAUNCH_UPDATE, SEV_CMD_SNP_LAUNCH_FINISH, SNP_PAGE_TYPE_NORMAL, SNP_PAGE_TYPE_VMSA,
  SEV_RET_INVALID_GUEST_STATE, SEV_RET_INVALID_PAGE_SIZE, SEV_CMD_SNP_PAGE_RECLAIM,
} from '../../../src/platform/psp/sev-codes.js';
import {
  rig, type Rig, FW_BASE_PFN, FW_PAGES, IOMMU_PFNS, addrBuf, initExBuf, shutdownExBuf, activateBuf, bytes, setU64,
} from './rig.js';

const GCTX = 0x30_0000;
const LIST_PA = 0x40_0000;

function snpInit(r: Rig): number {
  return r.run(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP));
}

/** The hypervisor hands a page to the firmware (RMPUPDATE to firmware state), then GCTX_CREATE + ACTIVATE. */
function launchGuest(r: Rig, gctx: number, asid: number): void {
  r.rmp.markFirmwareOwned(gctx / 4096);
  expect(r.run(SEV_CMD_SNP_GCTX_CREATE, addrBuf(gctx))).toBe(SEV_RET_SUCCESS);
  expect(r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(gctx, asid))).toBe(SEV_RET_SUCCESS);
}

function statuses(r: Rig): string[] {
  return r.trace.find('psp-command', 'psp').map((e) => e.detail);
}

describe('SEV firmware: initialization order', () => {
  it('legacy INIT before SNP_INIT on an SNP-capable part makes SNP_INIT_EX fail until SHUTDOWN; SNP first then INIT works', () => {
    const r = rig();
    expect(r.run(SEV_CMD_INIT, new Uint8Array(20))).toBe(SEV_RET_SUCCESS);
    expect(snpInit(r)).toBe(SEV_RET_INVALID_PLATFORM_STATE);
    expect(r.fw.snpInitialized).toBe(false);
    expect(r.rmp.state(FW_BASE_PFN)).toBe('hv'); // nothing marked by the refused init

    expect(r.run(SEV_CMD_SHUTDOWN)).toBe(SEV_RET_SUCCESS);
    expect(snpInit(r)).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_INIT, new Uint8Array(20))).toBe(SEV_RET_SUCCESS);
    expect(r.fw.legacyState).toBe(SEV_STATE_INIT);
    expect(statuses(r)).toEqual([
      'INIT -> SUCCESS (0x0)', 'SNP_INIT_EX -> INVALID_PLATFORM_STATE (0x1)', 'SHUTDOWN -> SUCCESS (0x0)',
      'SNP_INIT_EX -> SUCCESS (0x0)', 'INIT -> SUCCESS (0x0)',
    ]);
  });

  it('refuses SNP_INIT without SNP_EN on all CPUs, and SNP_INIT_EX without init_rmp before any RMP init', () => {
    const r = rig();
    r.platform.snpEn = false;
    expect(r.run(SEV_CMD_SNP_INIT)).toBe(SEV_RET_INVALID_CONFIG);
    r.platform.snpEn = true;
    expect(r.run(SEV_CMD_SNP_INIT_EX, initExBuf(0))).toBe(SEV_RET_RMP_INIT_REQUIRED);
    expect(r.run(SEV_CMD_SNP_INIT)).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_INIT)).toBe(SEV_RET_INVALID_PLATFORM_STATE); // already initialized
  });

  it('SNP_INIT_EX makes the firmware pages and the IOMMU buffers firmware-owned through the RMP', () => {
    const r = rig();
    expect(r.rmp.isAssigned(FW_BASE_PFN)).toBe(false);
    expect(snpInit(r)).toBe(SEV_RET_SUCCESS);
    for (let i = 0; i < FW_PAGES; i++) expect(r.rmp.state(FW_BASE_PFN + i)).toBe('fw');
    expect(r.rmp.state(FW_BASE_PFN + FW_PAGES)).toBe('hv');
    for (const pfn of IOMMU_PFNS) expect(r.rmp.state(pfn)).toBe('fw');
    expect(r.fw.snpInitialized).toBe(true);
  });

  it('SNP_INIT_EX reads the HV-fixed list from memory on 1.52+, and rejects list_paddr_en on 1.51', () => {
    const list = bytes(8 + 2 * 16, (dv) => {
      dv.setUint32(0, 2, true);
      setU64(dv, 8, 0xa0_000); dv.setUint32(16, 3, true);
      setU64(dv, 24, 0xe0_000); dv.setUint32(32, 1, true);
    });
    const r = rig({ major: 1, minor: 52 });
    r.mc.write(LIST_PA, list, { kind: 'cpu', id: 0 });
    expect(r.run(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP | SNP_INIT_EX_LIST_PADDR_EN, LIST_PA))).toBe(SEV_RET_SUCCESS);
    expect([0xa0, 0xa1, 0xa2, 0xe0].map((p) => r.rmp.state(p))).toEqual(['fixed', 'fixed', 'fixed', 'fixed']);
    expect(r.rmp.state(0xa3)).toBe('hv');

    const old = rig({ major: 1, minor: 51 });
    old.mc.write(LIST_PA, list, { kind: 'cpu', id: 0 });
    expect(old.run(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP | SNP_INIT_EX_LIST_PADDR_EN, LIST_PA))).toBe(SEV_RET_INVALID_PARAM);
    expect(old.fw.snpInitialized).toBe(false);
  });

  it('firmware older than 1.51 answers SNP commands INVALID_COMMAND but runs legacy ones', () => {
    const r = rig({ major: 1, minor: 50 });
    expect(snpInit(r)).toBe(SEV_RET_INVALID_COMMAND);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(1))).toBe(SEV_RET_INVALID_COMMAND);
    expect(r.run(SEV_CMD_INIT, new Uint8Array(20))).toBe(SEV_RET_SUCCESS);
  });
});

describe('SEV firmware: SNP shutdown with guests', () => {
  it('SNP_SHUTDOWN_EX with an active guest returns DFFLUSH_REQUIRED; after DECOMMISSION, WBINVD and DF_FLUSH it succeeds', () => {
    const r = rig();
    expect(snpInit(r)).toBe(SEV_RET_SUCCESS);
    launchGuest(r, GCTX, 1);

    // The panic notifier's sequence: SHUTDOWN_EX, DF_FLUSH on DFFLUSH_REQUIRED, retry once.
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN))).toBe(SEV_RET_DFFLUSH_REQUIRED);
    r.platform.wbinvdAll();
    expect(r.run(SEV_CMD_SNP_DF_FLUSH)).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN))).toBe(SEV_RET_DFFLUSH_REQUIRED);
    expect(r.fw.snpInitialized).toBe(true);
    expect(r.platform.iommuShutdowns).toBe(0);

    // The 2024 attempt: decommission first; DF_FLUSH then needs WBINVD on every CPU after it.
    r.clock.advance(1000);
    expect(r.run(SEV_CMD_SNP_DECOMMISSION, addrBuf(GCTX))).toBe(SEV_RET_SUCCESS);
    r.platform.wbinvdAt[0] = r.clock.now; // only the panicking CPU flushed
    expect(r.run(SEV_CMD_SNP_DF_FLUSH)).toBe(SEV_RET_WBINVD_REQUIRED);
    r.platform.wbinvdAll();
    expect(r.run(SEV_CMD_SNP_DF_FLUSH)).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN))).toBe(SEV_RET_SUCCESS);
    expect(r.fw.snpInitialized).toBe(false);
    expect(r.platform.iommuShutdowns).toBe(1);

    const codes = r.trace.find('psp-command', 'psp').map((e) => e.data?.['status']);
    expect(codes).toEqual([0, 0, 0, 0xf, 0, 0xf, 0, 0xe, 0, 0]);
    expect(statuses(r)).toContain('SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED (0xf)');
  });

  it('refuses SNP_SHUTDOWN_EX while legacy SEV is initialized, and a bad len with INVALID_LEN', () => {
    const r = rig();
    snpInit(r);
    r.run(SEV_CMD_INIT, new Uint8Array(20));
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(1))).toBe(SEV_RET_INVALID_PLATFORM_STATE);
    r.run(SEV_CMD_SHUTDOWN);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(1, 16))).toBe(SEV_RET_INVALID_LEN);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(1))).toBe(SEV_RET_SUCCESS);
  });

  it('a decommissioned ASID cannot be bound again until SNP_DF_FLUSH', () => {
    const r = rig();
    snpInit(r);
    launchGuest(r, GCTX, 3);
    r.rmp.markFirmwareOwned(GCTX / 4096 + 1);
    expect(r.run(SEV_CMD_SNP_GCTX_CREATE, addrBuf(GCTX + 4096))).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(GCTX + 4096, 3))).toBe(SEV_RET_ASID_OWNED);
    expect(r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(GCTX + 4096, 0))).toBe(SEV_RET_INVALID_ASID);
    expect(r.run(SEV_CMD_SNP_DECOMMISSION, addrBuf(GCTX))).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_DECOMMISSION, addrBuf(GCTX))).toBe(SEV_RET_INVALID_GUEST);
    expect(r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(GCTX + 4096, 3))).toBe(SEV_RET_DFFLUSH_REQUIRED);
    r.platform.wbinvdAll();
    expect(r.run(SEV_CMD_SNP_DF_FLUSH)).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(GCTX + 4096, 3))).toBe(SEV_RET_SUCCESS);
  });

  it('GCTX_CREATE needs a page the hypervisor gave to the firmware', () => {
    const r = rig();
    snpInit(r);
    expect(r.run(SEV_CMD_SNP_GCTX_CREATE, addrBuf(GCTX))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.fw.guests.size).toBe(0);
  });
});

function launchUpdateBuf(gctx: number, pageType: number, pa: number, pageSize = 0): Uint8Array {
  return bytes(32, (dv) => {
    setU64(dv, 0, gctx);
    dv.setUint32(8, pageSize | (pageType << 1), true);
    setU64(dv, 16, pa);
  });
}

describe('SEV firmware: launching a guest', () => {
  it('SNP_LAUNCH_UPDATE validates pages assigned to the guest, marks a VMSA page, and is refused after LAUNCH_FINISH', () => {
    const r = rig();
    snpInit(r);
    launchGuest(r, GCTX, 5);
    const page = 0x50_0000 / 4096;
    const vmsa = 0x50_1000 / 4096;
    const foreign = 0x50_2000 / 4096;
    r.rmp.assignToGuest(page, 5);
    r.rmp.assignToGuest(vmsa, 5);
    r.rmp.assignToGuest(foreign, 6);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, page * 4096))).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_VMSA, vmsa * 4096))).toBe(SEV_RET_SUCCESS);
    expect(r.rmp.validated.get(page)).toBe('page');
    expect(r.rmp.validated.get(vmsa)).toBe('vmsa');
    // Another guest's page, an already validated page, a hypervisor page, a 2 MiB request: refused, nothing changes.
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, foreign * 4096))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, page * 4096))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, 0x60_0000))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, foreign * 4096, 1))).toBe(SEV_RET_INVALID_PAGE_SIZE);
    expect(r.rmp.validated.has(foreign)).toBe(false);
    expect(r.run(SEV_CMD_SNP_LAUNCH_FINISH, addrBuf(GCTX))).toBe(SEV_RET_SUCCESS);
    r.rmp.assignToGuest(0x50_3000 / 4096, 5);
    expect(r.run(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdateBuf(GCTX, SNP_PAGE_TYPE_NORMAL, 0x50_3000))).toBe(SEV_RET_INVALID_GUEST_STATE);
    expect(r.run(SEV_CMD_SNP_LAUNCH_FINISH, addrBuf(GCTX))).toBe(SEV_RET_INVALID_GUEST_STATE);
  });

  it('SNP_PAGE_RECLAIM gives a guest\'s pages back only once its context is gone, never the firmware\'s own', () => {
    const r = rig();
    snpInit(r);
    launchGuest(r, GCTX, 5);
    const vmsa = 0x50_1000 / 4096;
    r.rmp.assignToGuest(vmsa, 5);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(vmsa * 4096))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(GCTX))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(FW_BASE_PFN * 4096))).toBe(SEV_RET_INVALID_PAGE_STATE);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(0x60_0000))).toBe(SEV_RET_INVALID_PAGE_STATE); // not assigned
    expect(r.run(SEV_CMD_SNP_DECOMMISSION, addrBuf(GCTX))).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(vmsa * 4096))).toBe(SEV_RET_SUCCESS);
    expect(r.run(SEV_CMD_SNP_PAGE_RECLAIM, addrBuf(GCTX))).toBe(SEV_RET_SUCCESS);
    expect(r.rmp.state(vmsa)).toBe('hv');
    expect(r.rmp.state(GCTX / 4096)).toBe('hv');
    expect(r.rmp.state(FW_BASE_PFN)).toBe('fw');
  });
});

describe('SEV firmware: IOMMU page reclaim at SNP_SHUTDOWN_EX', () => {
  for (const [minor, reclaimed] of [[52, false], [53, true]] as const) {
    it(`firmware 1.${minor} ${reclaimed ? 'moves the IOMMU pages back to hypervisor state' : 'leaves the IOMMU pages firmware-owned'}`, () => {
      const r = rig({ major: 1, minor });
      snpInit(r);
      for (const pfn of IOMMU_PFNS) expect(r.rmp.state(pfn)).toBe('fw');
      expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN))).toBe(SEV_RET_SUCCESS);
      expect(r.platform.iommuShutdowns).toBe(1);
      for (const pfn of IOMMU_PFNS) expect(r.rmp.state(pfn)).toBe(reclaimed ? 'hv' : 'fw');
      expect(r.rmp.state(FW_BASE_PFN)).toBe('fw'); // the firmware's own pages stay its own
      const ev = r.trace.find('psp-iommu-snp-shutdown');
      expect(ev[0]?.data?.['reclaim']).toBe(reclaimed);
    });
  }

  it('without iommu_snp_shutdown neither the hook runs nor pages move', () => {
    const r = rig({ major: 1, minor: 55 });
    snpInit(r);
    expect(r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(0))).toBe(SEV_RET_SUCCESS);
    expect(r.platform.iommuShutdowns).toBe(0);
    for (const pfn of IOMMU_PFNS) expect(r.rmp.state(pfn)).toBe('fw');
  });
});

describe('SEV firmware: fault injection', () => {
  it('failNext makes only the next command with that id fail, without changing state', () => {
    const r = rig();
    r.fw.failNext(SEV_CMD_SNP_INIT_EX, SEV_RET_HWSEV_RET_UNSAFE);
    expect(r.run(SEV_CMD_PLATFORM_STATUS)).toBe(SEV_RET_SUCCESS); // other ids unaffected
    expect(snpInit(r)).toBe(SEV_RET_HWSEV_RET_UNSAFE);
    expect(r.fw.snpInitialized).toBe(false);
    expect(r.rmp.state(FW_BASE_PFN)).toBe('hv');
    expect(snpInit(r)).toBe(SEV_RET_SUCCESS);
    const inj = r.trace.find('psp-command').filter((e) => e.data?.['injected'] === true);
    expect(inj.map((e) => e.detail)).toEqual(['SNP_INIT_EX -> HWSEV_RET_UNSAFE (0x14) [injected]']);
    expect(() => r.fw.failNext(SEV_CMD_INIT, 0)).toThrow(RangeError);
  });
});

describe('SEV firmware: random command sequences', () => {
  const known = new Set(Object.keys(SEV_RET_NAMES).map(Number));
  const gctxs = [GCTX, GCTX + 4096, GCTX + 8192];
  const op = fc.oneof(
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_INIT }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_SHUTDOWN }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_DF_FLUSH }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_PLATFORM_STATUS }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_SNP_INIT }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_SNP_SHUTDOWN }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_SNP_DF_FLUSH }),
    fc.constant({ k: 'cmd' as const, cmd: SEV_CMD_SNP_PLATFORM_STATUS }),
    fc.record({ k: fc.constant('initex' as const), flags: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ k: fc.constant('shutex' as const), flags: fc.integer({ min: 0, max: 3 }), len: fc.constantFrom(8, 8, 0, 16) }),
    fc.record({ k: fc.constant('gctx' as const), g: fc.integer({ min: 0, max: 2 }), give: fc.boolean() }),
    fc.record({ k: fc.constant('activate' as const), g: fc.integer({ min: 0, max: 2 }), asid: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ k: fc.constant('decommission' as const), g: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ k: fc.constant('wbinvd' as const), cpus: fc.integer({ min: 0, max: 15 }) }),
    fc.record({ k: fc.constant('snpen' as const), on: fc.boolean() }),
    fc.record({ k: fc.constant('fail' as const), cmd: fc.constantFrom(SEV_CMD_SNP_INIT_EX, SEV_CMD_SNP_SHUTDOWN_EX, SEV_CMD_SNP_DF_FLUSH), status: fc.constantFrom(0x1, 0x13, 0x14, 0x26) }),
    fc.integer({ min: 0, max: 0x7ff }).map((cmd) => ({ k: 'cmd' as const, cmd })),
  );

  it('returns only known status codes and keeps the platform state consistent', () => {
    fc.assert(fc.property(fc.constantFrom(50, 51, 52, 53, 55), fc.array(op, { maxLength: 40 }), (minor, ops) => {
      const r = rig({ major: 1, minor }, 4);
      r.fw.failNext(0x7ff, 0x17); // never-run id: injection on other ids stays isolated
      for (const o of ops) {
        let status: number | undefined;
        switch (o.k) {
          case 'cmd':
            status = r.run(o.cmd, o.cmd === SEV_CMD_INIT ? new Uint8Array(20) : o.cmd === SEV_CMD_SNP_PLATFORM_STATUS ? addrBuf(0x20_0000) : undefined);
            break;
          case 'initex': status = r.run(SEV_CMD_SNP_INIT_EX, initExBuf(o.flags, LIST_PA)); break;
          case 'shutex': status = r.run(SEV_CMD_SNP_SHUTDOWN_EX, shutdownExBuf(o.flags, o.len)); break;
          case 'gctx':
            if (o.give) r.rmp.markFirmwareOwned(gctxs[o.g]! / 4096);
            status = r.run(SEV_CMD_SNP_GCTX_CREATE, addrBuf(gctxs[o.g]!));
            break;
          case 'activate': status = r.run(SEV_CMD_SNP_ACTIVATE, activateBuf(gctxs[o.g]!, o.asid)); break;
          case 'decommission': status = r.run(SEV_CMD_SNP_DECOMMISSION, addrBuf(gctxs[o.g]!)); break;
          case 'wbinvd':
            for (let c = 0; c < 4; c++) if ((o.cpus >> c) & 1) r.platform.wbinvdAt[c] = r.clock.now;
            break;
          case 'snpen': r.platform.snpEn = o.on; break;
          case 'fail': r.fw.failNext(o.cmd, o.status); break;
        }
        r.clock.advance(100);
        if (status !== undefined) expect(known.has(status)).toBe(true);

        const fw = r.fw;
        expect([SEV_STATE_UNINIT, SEV_STATE_INIT]).toContain(fw.legacyState);
        expect(fw.busy).toBe(false);
        if (minor < 51) expect(fw.snpInitialized).toBe(false);
        if (!fw.snpInitialized) expect(fw.guests.size).toBe(0);
        if (fw.snpInitialized) {
          expect(fw.rmpInitialized).toBe(true);
          for (let i = 0; i < FW_PAGES; i++) expect(r.rmp.state(FW_BASE_PFN + i)).toBe('fw');
        }
        const asids = [...fw.guests.values()].map((g) => g.asid).filter((a) => a !== undefined);
        expect(new Set(asids).size).toBe(asids.length);
        for (const a of asids) {
          expect(a).toBeGreaterThanOrEqual(1);
          expect(a).toBeLessThanOrEqual(fw.maxSnpAsid);
          expect(fw.asidsAwaitingFlush.has(a)).toBe(false);
        }
        for (const g of fw.guests.keys()) expect(r.rmp.isAssigned(g / 4096)).toBe(true);
      }
      const trace = r.trace.find('psp-command', 'psp');
      expect(trace.length).toBe(r.fw.commandsExecuted);
      for (const e of trace) expect(known.has(e.data?.['status'] as number)).toBe(true);
    }), { numRuns: 200, seed: 5 });
  });
});
