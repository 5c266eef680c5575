#!/usr/bin/python3
"""Reads a filtered ELF vmcore (makedumpfile -E -d N, or kdumpsim's own) with
libkdumpfile and checks it against a kdumpsim truth manifest. A page of the
manifest is "in the file" when some PT_LOAD's [p_paddr, p_paddr + p_filesz)
holds it; those must read back as the manifest says. The others were left
out: they must not read as data (NoDataException, or zeros for the page just
before a PT_LOAD's start, libkdumpfile 0.5.1's off-by-one). Prints one JSON
object on stdout; the vitest file decides what must hold.

usage: check_kdumpfile_filtered.py VMCORE TRUTH
"""

import argparse
import json
import sys

import kdumpfile
from kdumpfile.exceptions import NoDataException

import elflib as E
import truthlib as T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vmcore")
    ap.add_argument("truth")
    a = ap.parse_args()

    m = T.load_manifest(a.truth)
    loads = [p for p in (E.phdrs(a.vmcore) or []) if p["type"] == E.PT_LOAD]
    spans = [(p["paddr"] // T.PAGE_SIZE, (p["paddr"] + p["filesz"]) // T.PAGE_SIZE) for p in loads]
    starts = {p["paddr"] // T.PAGE_SIZE for p in loads}

    def in_file(pfn):
        return any(lo <= pfn < hi for lo, hi in spans)

    k = kdumpfile.kdumpfile(a.vmcore)
    k.attr["addrxlat.ostype"] = "linux"

    def read_phys(pfn):
        return k.read(kdumpfile.KDUMP_MACHPHYSADDR, pfn * T.PAGE_SIZE, T.PAGE_SIZE)

    present = []
    left_out = []
    for pfn in T.range_pfns(m):
        (present if in_file(pfn) else left_out).append(pfn)

    out = {"format": k.attr["file.format"], "present": T.compare_pages(m, present, read_phys, (NoDataException,))}
    lo = {"checked": 0, "noData": 0, "quirkZero": 0, "readable": 0, "problems": []}
    for pfn in left_out:
        lo["checked"] += 1
        try:
            page = bytes(read_phys(pfn))
        except NoDataException:
            lo["noData"] += 1
            continue
        if page == T.ZERO_PAGE and pfn + 1 in starts:
            lo["quirkZero"] += 1
            continue
        lo["readable"] += 1
        if len(lo["problems"]) < T.MAX_LISTED:
            lo["problems"].append({"pfn": pfn, "problem": "left out, yet reads as data", "digest": T.digest(page)})
    out["leftOut"] = lo

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
