#!/usr/bin/python3
"""Opens a vmcore with drgn (no debug info) and checks it against a kdumpsim
truth manifest. Prints one JSON object on stdout.

usage: check_drgn.py VMCORE TRUTH --max-pfn N [--zero-stride N]
                     [--virt-sample N] [--no-vaddr-copy PATH]

--no-vaddr-copy writes a sparse copy of the vmcore whose direct-map PT_LOADs
have p_vaddr 0, so drgn can no longer serve direct-map addresses from the
program headers and must translate them through swapper_pg_dir.
"""

import argparse
import json
import os
import sys

import drgn

import elflib as E
import truthlib as T


def fault(e):
    return {"error": type(e).__name__, "message": str(e), "address": hex(e.address) if getattr(e, "address", None) is not None else None}


def virt_compare(prog, m, pfns):
    def read(pfn):
        return prog.read(T.PAGE_OFFSET + pfn * T.PAGE_SIZE, T.PAGE_SIZE)
    return T.compare_pages(m, pfns, read, (drgn.FaultError,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vmcore")
    ap.add_argument("truth")
    ap.add_argument("--max-pfn", type=int, required=True)
    ap.add_argument("--zero-stride", type=int, default=16, help="check every N-th zero page (all non-zero pages are checked)")
    ap.add_argument("--virt-sample", type=int, default=512)
    ap.add_argument("--no-vaddr-copy")
    a = ap.parse_args()

    m = T.load_manifest(a.truth)
    prog = drgn.Program()
    prog.set_core_dump(a.vmcore)
    out = {
        "flags": str(prog.flags),
        "isLinuxKernel": bool(prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL),
        "arch": prog.platform.arch.name if prog.platform is not None else None,
    }

    def read_phys(pfn):
        return prog.read(pfn * T.PAGE_SIZE, T.PAGE_SIZE, True)

    out["phys"] = T.compare_pages(m, T.range_pfns(m, a.zero_stride), read_phys, (drgn.FaultError,))
    gap = sorted(m["ranges"])[0][1] if len(m["ranges"]) > 1 else None
    if gap is not None:
        try:
            read_phys(gap)
            out["physGap"] = {"pfn": gap, "error": None}
        except drgn.FaultError as e:
            out["physGap"] = {"pfn": gap, **fault(e)}

    nonzero = sorted(int(p) for p in m["pages"])
    sample = T.evenly(nonzero, a.virt_sample)
    first = sample[0]
    va = T.PAGE_OFFSET + first * T.PAGE_SIZE
    try:
        b = prog.read(va, 16)
        out["virt16"] = {"va": hex(va), "ok": True, "equal": b == prog.read(first * T.PAGE_SIZE, 16, True)}
    except drgn.FaultError as e:
        out["virt16"] = {"va": hex(va), "ok": False, **fault(e)}
    out["virt"] = virt_compare(prog, m, sample)

    # Direct-map addresses no PT_LOAD's p_vaddr covers: drgn walks the page tables.
    if gap is not None:
        va = T.PAGE_OFFSET + gap * T.PAGE_SIZE
        try:
            prog.read(va, 8)
            out["virtGap"] = {"va": hex(va), "error": None}
        except drgn.FaultError as e:
            out["virtGap"] = {"va": hex(va), **fault(e)}
    va = T.PAGE_OFFSET + a.max_pfn * T.PAGE_SIZE
    try:
        prog.read(va, 8)
        out["beyondRam"] = {"va": hex(va), "error": None}
    except drgn.FaultError as e:
        out["beyondRam"] = {"va": hex(va), **fault(e)}

    if a.no_vaddr_copy:
        T.sparse_copy(a.vmcore, a.no_vaddr_copy)
        cleared, _ = E.clear_direct_map_vaddrs(a.no_vaddr_copy)
        p2 = drgn.Program()
        p2.set_core_dump(a.no_vaddr_copy)
        out["noVaddr"] = {
            "cleared": cleared,
            "isLinuxKernel": bool(p2.flags & drgn.ProgramFlags.IS_LINUX_KERNEL),
            "virt": virt_compare(p2, m, sample),
        }
        os.unlink(a.no_vaddr_copy)

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
