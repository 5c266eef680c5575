#!/usr/bin/python3
"""Reads an SME vmcore (page tables carry the C-bit) with libkdumpfile and
checks it against a kdumpsim truth manifest. Prints one JSON object; the
vitest file (sme-libkdumpfile.test.ts) decides what must hold.

usage: check_sme_kdumpfile.py VMCORE TRUTH --novaddr-copy PATH [--kv-sample N]

1. VMCOREINFO: NUMBER(sme_mask) as libkdumpfile parsed it, and the pte_mask
   libaddrxlat's page-table method took from it.
2. Every page of the manifest by KDUMP_MACHPHYSADDR.
3. On a copy whose direct-map PT_LOADs have p_vaddr 0, a sample of pages by
   KDUMP_KVADDR at PAGE_OFFSET + pa:
   - "default": libkdumpfile as it sets itself up (it finds the direct map by
     walking swapper_pg_dir, then translates linearly);
   - "pgtForced": the direct-map range of the KV->PHYS map switched to the
     page-table method, so every read walks our tables;
   - "pgtNoMask": as pgtForced with the method's pte_mask set to 0 (the C-bit
     is no longer stripped), a control that must fail;
   - "noSmeMaskLine": libkdumpfile's own set-up again, after the digits of
     NUMBER(sme_mask) in the copy's VMCOREINFO are overwritten with zeros.
4. Our own walk from swapper_pg_dir (entries read by MACHPHYSADDR), once
   keeping the C-bit in each entry and once stripping sme_mask.
"""

import argparse
import json
import os
import sys

import addrxlat
import kdumpfile
from kdumpfile.exceptions import KDumpBaseException, NoDataException

import check_kdumpfile as CK
import smelib as S
import truthlib as T

DIRECT_MAP_PML4_INDEX = (T.PAGE_OFFSET >> 39) & 0x1FF


def open_dump(path):
    k = kdumpfile.kdumpfile(path)
    k.attr["addrxlat.ostype"] = "linux"  # not set automatically by libkdumpfile 0.5.1
    return k


def vmcoreinfo_line(k, key):
    try:
        return str(k.attr[f"linux.vmcoreinfo.lines.{key}"])
    except (KDumpBaseException, KeyError) as e:
        return f"error: {type(e).__name__}: {e}"


def kv_compare(k, m, pfns):
    def read(pfn):
        return k.read(kdumpfile.KDUMP_KVADDR, T.PAGE_OFFSET + pfn * T.PAGE_SIZE, T.PAGE_SIZE)
    return T.compare_pages(m, pfns, read, (KDumpBaseException,))


def force_pgt(k, span):
    """Makes libkdumpfile translate [PAGE_OFFSET, PAGE_OFFSET + span) with the page-table method."""
    s = k.get_addrxlat_sys()
    kv = s.get_map(addrxlat.SYS_MAP_KV_PHYS)
    kv.set(T.PAGE_OFFSET, addrxlat.Range(span - 1, addrxlat.SYS_METH_PGT))
    s.set_map(addrxlat.SYS_MAP_KV_PHYS, kv)
    return s.get_map(addrxlat.SYS_MAP_KV_PHYS).search(T.PAGE_OFFSET) == addrxlat.SYS_METH_PGT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vmcore")
    ap.add_argument("truth")
    ap.add_argument("--novaddr-copy", required=True)
    ap.add_argument("--kv-sample", type=int, default=512)
    a = ap.parse_args()

    m = T.load_manifest(a.truth)
    out = {}

    # 1 + 2. The dump as written.
    k = open_dump(a.vmcore)
    out["format"] = k.attr["file.format"]
    out["smeMaskLine"] = vmcoreinfo_line(k, "NUMBER(sme_mask)")
    raw = bytes(k.attr["linux.vmcoreinfo.raw"]).decode("latin-1")
    info = T.parse_vmcoreinfo(raw)
    out["smeMaskRaw"] = info.get("NUMBER(sme_mask)")
    sme_mask = int(info.get("NUMBER(sme_mask)", "0"), 10)

    def read_phys(pfn):
        return k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * T.PAGE_SIZE, T.PAGE_SIZE)

    out["phys"] = T.compare_pages(m, T.range_pfns(m), read_phys, (NoDataException,))
    ranges = S.phys_ranges(a.vmcore)
    out["physEnd"] = hex(max(b for _, b in ranges))

    # 3. The copy without direct-map p_vaddr.
    out["copy"] = S.novaddr_copy(a.vmcore, a.novaddr_copy)
    try:
        sample = T.evenly(sorted(int(p) for p in m["pages"]), a.kv_sample)
        span = max(b for _, b in m["ranges"]) * T.PAGE_SIZE

        k1 = open_dump(a.novaddr_copy)
        res = kv_compare(k1, m, sample)
        pgt = k1.get_addrxlat_sys().get_meth(addrxlat.SYS_METH_PGT)
        out["default"] = {**res, "directMap": CK.direct_map_region(k1), "pgtPteMask": pgt.pte_mask}

        k2 = open_dump(a.novaddr_copy)
        kv_compare(k2, m, sample[:1])  # initialises translation
        forced = force_pgt(k2, span)
        out["pgtForced"] = {**kv_compare(k2, m, sample), "forced": forced,
                            "pgtPteMask": k2.get_addrxlat_sys().get_meth(addrxlat.SYS_METH_PGT).pte_mask}

        k3 = open_dump(a.novaddr_copy)
        kv_compare(k3, m, sample[:1])
        forced = force_pgt(k3, span)
        s3 = k3.get_addrxlat_sys()
        meth = s3.get_meth(addrxlat.SYS_METH_PGT)
        meth.pte_mask = 0
        s3.set_meth(addrxlat.SYS_METH_PGT, meth)
        nm = kv_compare(k3, m, sample[1:])
        nm["problems"] = nm["problems"][:2]
        out["pgtNoMask"] = {**nm, "forced": forced, "pgtPteMask": s3.get_meth(addrxlat.SYS_METH_PGT).pte_mask}

        old = S.zero_vmcoreinfo_number(a.novaddr_copy, "sme_mask")
        k4 = open_dump(a.novaddr_copy)
        nl = kv_compare(k4, m, sample)
        nl["problems"] = nl["problems"][:2]
        out["noSmeMaskLine"] = {**nl, "replaced": old, "smeMaskLine": vmcoreinfo_line(k4, "NUMBER(sme_mask)"),
                                "directMap": CK.direct_map_region(k4),
                                "pgtPteMask": k4.get_addrxlat_sys().get_meth(addrxlat.SYS_METH_PGT).pte_mask}
    finally:
        os.unlink(a.novaddr_copy)

    # 4. Our own walk, entries read by machine-physical address.
    root = T.pgt_root_pa(info)

    def read_u64(pa):
        return T.le_u64(k.read(kdumpfile.KDUMP_MACHPHYSADDR, pa, 8))

    out["pgtRoot"] = hex(root)
    out["pml4DirectMapEntry"] = hex(read_u64(root + DIRECT_MAP_PML4_INDEX * 8))
    own = {"sampled": 0, "strippedOk": 0, "keptFailed": 0, "entriesRead": 0, "entriesWithMask": 0,
           "keptStops": [], "keptStopsInFile": 0, "problems": []}
    for pfn in sample:
        pa = pfn * T.PAGE_SIZE
        va = T.PAGE_OFFSET + pa
        own["sampled"] += 1
        st = S.walk(read_u64, root, va, sme_mask)
        own["entriesRead"] += len(st["entries"])
        own["entriesWithMask"] += sum(1 for e in st["entries"] if sme_mask and e & sme_mask == sme_mask)
        if st.get("pa") == pa:
            own["strippedOk"] += 1
        elif len(own["problems"]) < T.MAX_LISTED:
            own["problems"].append({"va": hex(va), "stripped": {k_: (hex(v) if isinstance(v, int) else v) for k_, v in st.items() if k_ != "entries"}})
        kept = S.walk(read_u64, root, va, 0)
        if "pa" in kept:
            if len(own["problems"]) < T.MAX_LISTED:
                own["problems"].append({"va": hex(va), "kept": f"walk keeping the C-bit gave 0x{kept['pa']:x}"})
            continue
        own["keptFailed"] += 1
        stop = {"stoppedAt": kept["stoppedAt"], "tableAddress": hex(kept["tableAddress"]), "error": kept["error"]}
        if any(lo <= kept["tableAddress"] < hi for lo, hi in ranges):
            own["keptStopsInFile"] += 1
        if stop not in own["keptStops"]:
            own["keptStops"].append(stop)
    out["ownWalk"] = own

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
