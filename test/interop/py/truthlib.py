"""Shared helpers for the interop checkers: the kdumpsim truth manifest,
page digests, and a page-by-page comparison that any reader can plug into.

Runs under Debian's /usr/bin/python3 (3.11), the one that sees the kdumpfile
and drgn modules. Standard library only.
"""

import hashlib
import json
import os
import struct

ZERO_PAGE_HASH = "0"
PAGE_SIZE = 4096
ZERO_PAGE = bytes(PAGE_SIZE)
PAGE_OFFSET = 0xFFFF888000000000
START_KERNEL_MAP = 0xFFFFFFFF80000000
MAX_LISTED = 10


def load_manifest(path):
    with open(path, "r", encoding="utf-8") as f:
        m = json.load(f)
    if m.get("format") != "kdumpsim-truth" or m.get("pageSize") != PAGE_SIZE:
        raise SystemExit(f"{path}: not a kdumpsim truth manifest with 4 KiB pages")
    return m


def digest(page):
    """SHA-256 hex of a page, or "0" for an all-zero page (as the manifest writes it)."""
    if page == ZERO_PAGE:
        return ZERO_PAGE_HASH
    return hashlib.sha256(page).hexdigest()


def expected(m, pfn):
    return m["pages"].get(str(pfn), ZERO_PAGE_HASH)


def allowed(m, pfn, got):
    """(ok, changed_after_panic) for a page whose digest is `got`."""
    if got == expected(m, pfn):
        return True, False
    if got in m["alternatives"].get(str(pfn), []):
        return True, True
    return False, False


def in_ranges(m, pfn):
    return any(a <= pfn < b for a, b in m["ranges"])


def range_pfns(m, zero_stride=1):
    """Every pfn in the manifest's ranges: all non-zero ones, every `zero_stride`-th zero one."""
    pages = m["pages"]
    n = 0
    for a, b in m["ranges"]:
        for pfn in range(a, b):
            if str(pfn) in pages:
                yield pfn
            else:
                if n % zero_stride == 0:
                    yield pfn
                n += 1


def evenly(seq, limit):
    """At most `limit` items spread evenly over seq, always keeping the first and the last."""
    seq = list(seq)
    if len(seq) <= limit:
        return seq
    step = (len(seq) - 1) / (limit - 1)
    return [seq[round(i * step)] for i in range(limit)]


def compare_pages(m, pfns, read_page, no_data_errors):
    """Reads each pfn with read_page(pfn) -> bytes and checks it against the manifest.

    An exception whose type is in `no_data_errors` counts as a missing page;
    any other exception propagates. Returns counts and the first problems.
    """
    r = {
        "nonZeroChecked": 0, "nonZeroEqual": 0, "changedAfterPanic": 0,
        "zeroChecked": 0, "zeroEqual": 0,
        "differ": 0, "missing": 0, "nonZeroMissing": 0, "problems": [],
    }
    for pfn in pfns:
        nonzero = str(pfn) in m["pages"]
        r["nonZeroChecked" if nonzero else "zeroChecked"] += 1
        try:
            page = bytes(read_page(pfn))
        except no_data_errors as e:
            r["missing"] += 1
            if nonzero:
                r["nonZeroMissing"] += 1
            if len(r["problems"]) < MAX_LISTED:
                r["problems"].append({"pfn": pfn, "problem": "missing", "error": f"{type(e).__name__}: {e}"})
            continue
        got = digest(page)
        ok, changed = allowed(m, pfn, got)
        if ok:
            r["nonZeroEqual" if nonzero else "zeroEqual"] += 1
            if changed:
                r["changedAfterPanic"] += 1
            continue
        r["differ"] += 1
        if len(r["problems"]) < MAX_LISTED:
            r["problems"].append({"pfn": pfn, "problem": "differs", "expected": expected(m, pfn), "actual": got})
    return r


def outside_pfns(m, max_pfn, skip=()):
    """Every pfn below max_pfn (plus a few past it) that the manifest's ranges leave out."""
    skip = set(skip)
    out = []
    at = 0
    for a, b in sorted(m["ranges"]) + [(max_pfn + 16, max_pfn + 16)]:
        out.extend(p for p in range(at, a) if p not in skip)
        at = max(at, b)
    return out


def parse_vmcoreinfo(text):
    info = {}
    for line in text.split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = v
    return info


def pgt_root_pa(info):
    """Physical address of swapper_pg_dir, from VMCOREINFO (kernel-text symbol minus __START_KERNEL_map plus phys_base)."""
    sym = int(info["SYMBOL(swapper_pg_dir)"], 16)
    phys_base = int(info.get("NUMBER(phys_base)", "0"), 0)
    return sym - START_KERNEL_MAP + phys_base


def walk_x86_64(read_u64, root_pa, va):
    """A 4-level x86-64 page-table walk, written here independently of kdumpsim.

    read_u64(pa) reads one little-endian 64-bit entry. Returns the physical
    address or raises LookupError naming the level where the walk stopped.
    """
    addr_mask = 0x000FFFFFFFFFF000
    table = root_pa
    for level, shift, name in ((4, 39, "pml4"), (3, 30, "pdpt"), (2, 21, "pd"), (1, 12, "pt")):
        idx = (va >> shift) & 0x1FF
        e = read_u64(table + idx * 8)
        if not e & 1:
            raise LookupError(f"{name}[{idx}] not present (0x{e:x})")
        if level in (3, 2) and e & 0x80:  # PS: 1 GiB or 2 MiB page
            size = 1 << shift
            return (e & addr_mask & ~(size - 1)) | (va & (size - 1))
        table = e & addr_mask
        if level == 1:
            return table | (va & 0xFFF)
    raise AssertionError("unreachable")


def le_u64(b):
    return struct.unpack("<Q", bytes(b))[0]


def sparse_copy(src, dst):
    """Copies only the data extents (the vmcore is mostly holes)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fi.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fi.fileno(), data, os.SEEK_HOLE)
            fi.seek(data)
            fo.seek(data)
            left = hole - data
            while left > 0:
                chunk = fi.read(min(left, 1 << 20))
                fo.write(chunk)
                left -= len(chunk)
            pos = hole
        fo.truncate(size)
