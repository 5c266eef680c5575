#!/usr/bin/python3
"""Opens an SME vmcore (page tables carry the C-bit) with drgn (no debug
info) and records what it does. Prints one JSON object; the vitest file
(sme-drgn.test.ts) decides what must hold.

usage: check_sme_drgn.py VMCORE TRUTH --max-pfn N --novaddr-copy PATH
                         [--zero-stride N] [--virt-sample N]

On the vmcore as written: physical reads of the manifest, direct-map reads
(served from p_vaddr), and two direct-map addresses no p_vaddr covers (the
first page after the first RAM range, and the first page past the end of
DRAM). On a copy whose direct-map PT_LOADs have p_vaddr 0: direct-map reads
of a sample, which drgn can only serve by walking swapper_pg_dir, and a
kernel-text read (init_uts_ns), still covered by the kept PT_LOAD.
"""

import argparse
import json
import os
import sys

import drgn

import smelib as S
import truthlib as T

DIRECT_MAP_PML4_INDEX = (T.PAGE_OFFSET >> 39) & 0x1FF


def fault(e):
    return {"error": type(e).__name__, "message": str(e),
            "address": hex(e.address) if getattr(e, "address", None) is not None else None}


def try_read(prog, va, n=8):
    try:
        prog.read(va, n)
        return {"va": hex(va), "error": None}
    except drgn.FaultError as e:
        return {"va": hex(va), **fault(e)}


def virt_compare(prog, m, pfns):
    """compare_pages through kernel-virtual reads, plus every distinct fault seen."""
    faults = []

    def read(pfn):
        try:
            return prog.read(T.PAGE_OFFSET + pfn * T.PAGE_SIZE, T.PAGE_SIZE)
        except drgn.FaultError as e:
            f = fault(e)
            if f not in faults:
                faults.append(f)
            raise
    r = T.compare_pages(m, pfns, read, (drgn.FaultError,))
    r["faults"] = faults
    return r


def uts_release(prog, info):
    va = int(info["SYMBOL(init_uts_ns)"], 16) + int(info.get("OFFSET(uts_namespace.name)", "0")) + 2 * 65
    try:
        return {"va": hex(va), "release": prog.read(va, 65).split(b"\0", 1)[0].decode("latin-1"), "error": None}
    except drgn.FaultError as e:
        return {"va": hex(va), **fault(e)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vmcore")
    ap.add_argument("truth")
    ap.add_argument("--max-pfn", type=int, required=True)
    ap.add_argument("--novaddr-copy", required=True)
    ap.add_argument("--zero-stride", type=int, default=16)
    ap.add_argument("--virt-sample", type=int, default=512)
    a = ap.parse_args()

    m = T.load_manifest(a.truth)
    prog = drgn.Program()
    prog.set_core_dump(a.vmcore)
    out = {"flags": str(prog.flags), "isLinuxKernel": bool(prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL)}

    def read_phys(pfn):
        return prog.read(pfn * T.PAGE_SIZE, T.PAGE_SIZE, True)

    out["phys"] = T.compare_pages(m, T.range_pfns(m, a.zero_stride), read_phys, (drgn.FaultError,))

    # drgn 0.0.22 does not expose the VMCOREINFO it parsed; read the note ourselves.
    info = T.parse_vmcoreinfo(S.vmcoreinfo_text(a.vmcore))
    sme_mask = int(info.get("NUMBER(sme_mask)", "0"))
    out["smeMask"] = str(sme_mask)

    root = T.pgt_root_pa(info)
    pml4e = T.le_u64(prog.read(root + DIRECT_MAP_PML4_INDEX * 8, 8, True))
    out["pml4DirectMapEntry"] = hex(pml4e)
    pdpt = pml4e & S.ADDR_FIELD & ~sme_mask
    # The PDPT, at its address without the C-bit, is in the dump and maps PAGE_OFFSET.
    try:
        out["pdptStrippedEntry0"] = hex(T.le_u64(prog.read(pdpt, 8, True)))
    except drgn.FaultError as e:
        out["pdptStrippedEntry0"] = fault(e)
    ranges = S.phys_ranges(a.vmcore)
    out["physEnd"] = hex(max(b for _, b in ranges))

    sample = T.evenly(sorted(int(p) for p in m["pages"]), a.virt_sample)
    out["withVaddr"] = {"virt": virt_compare(prog, m, sample), "initUts": uts_release(prog, info)}
    gap = sorted(m["ranges"])[0][1]
    out["withVaddr"]["gap"] = {"pfn": gap, **try_read(prog, T.PAGE_OFFSET + gap * T.PAGE_SIZE)}
    out["withVaddr"]["beyondRam"] = try_read(prog, T.PAGE_OFFSET + a.max_pfn * T.PAGE_SIZE)

    out["copy"] = S.novaddr_copy(a.vmcore, a.novaddr_copy)
    try:
        p2 = drgn.Program()
        p2.set_core_dump(a.novaddr_copy)
        out["noVaddr"] = {
            "isLinuxKernel": bool(p2.flags & drgn.ProgramFlags.IS_LINUX_KERNEL),
            "virt": virt_compare(p2, m, sample),
            "initUts": uts_release(p2, info),
            "physFirst": T.digest(p2.read(sample[0] * T.PAGE_SIZE, T.PAGE_SIZE, True)) == T.expected(m, sample[0]),
        }
    finally:
        os.unlink(a.novaddr_copy)

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
