"""Helpers shared by the SME interop checkers (check_sme_kdumpfile.py,
check_sme_drgn.py): the ELF program headers, a sparse copy whose direct-map
PT_LOADs have p_vaddr 0 (as check_drgn.py's --no-vaddr-copy makes), and a
4-level x86-64 page walk that strips a caller-chosen mask from every entry.

Standard library only; runs under Debian's /usr/bin/python3.
"""

import os
import struct

import elflib as E
import truthlib as T

PT_LOAD = E.PT_LOAD
PT_NOTE = E.PT_NOTE
# Bits 12-51 of an entry: the physical-address field as the architecture
# defines it. The C-bit (47 here) lies inside it, so it must be masked off
# separately (makedumpfile's ENTRY_MASK & ~sme_mask, crash's sme_mask).
ADDR_FIELD = 0x000FFFFFFFFFF000


def phdrs(path):
    """Every program header as a dict (see elflib.phdrs); exits unless ELF64."""
    headers = E.phdrs(path)
    if headers is None:
        raise SystemExit(f"{path}: not an ELF64 file")
    return headers


def phys_ranges(path):
    """[paddr, paddr + memsz) of every PT_LOAD."""
    return [(p["paddr"], p["paddr"] + p["memsz"]) for p in phdrs(path) if p["type"] == PT_LOAD]


def novaddr_copy(src, dst):
    """A sparse copy of src in which every direct-map PT_LOAD has p_vaddr 0.

    The kernel-text PT_LOAD (p_vaddr >= __START_KERNEL_map) is kept. Returns
    {"cleared": n, "kept": [p_vaddr of the PT_LOADs left alone, hex]}.
    """
    T.sparse_copy(src, dst)
    cleared, kept = E.clear_direct_map_vaddrs(dst)
    return {"cleared": cleared, "kept": [hex(v) for v in kept]}


def vmcoreinfo_text(path):
    """The desc of the first note named VMCOREINFO in the PT_NOTE segments."""
    for p in phdrs(path):
        if p["type"] != PT_NOTE:
            continue
        with open(path, "rb") as f:
            f.seek(p["offset"])
            data = f.read(p["filesz"])
        at = 0
        while at + 12 <= len(data):
            namesz, descsz, _ = struct.unpack_from("<III", data, at)
            name = data[at + 12:at + 12 + namesz].rstrip(b"\0")
            desc = at + 12 + ((namesz + 3) & ~3)
            if name == b"VMCOREINFO":
                return data[desc:desc + descsz].decode("latin-1")
            at = desc + ((descsz + 3) & ~3)
    raise SystemExit(f"{path}: no VMCOREINFO note")


def zero_vmcoreinfo_number(path, key):
    """Overwrites the digits of `NUMBER(key)=...` in the PT_NOTE with zeros of the same length.

    The note keeps its size, so nothing else moves. Returns the old value.
    """
    note = next(p for p in phdrs(path) if p["type"] == PT_NOTE)
    prefix = f"NUMBER({key})=".encode()
    with open(path, "r+b") as f:
        f.seek(note["offset"])
        data = f.read(note["filesz"])
        at = data.find(b"\n" + prefix) + 1
        if at == 0:
            raise SystemExit(f"{path}: VMCOREINFO has no {prefix.decode()}")
        start = at + len(prefix)
        end = data.index(b"\n", start)
        f.seek(note["offset"] + start)
        f.write(b"0" * (end - start))
    return data[start:end].decode()


def walk(read_u64, root_pa, va, strip_mask):
    """A 4-level walk that takes `entry & ADDR_FIELD & ~strip_mask` as each next address.

    Returns {"pa": int} on success or {"stoppedAt": level name, "tableAddress": int,
    "error": str} when reading a table entry fails (read_u64 raised) or an entry is
    not present. "entries" lists every entry read, so the caller can see their C-bits.
    """
    mask = ADDR_FIELD & ~strip_mask
    table = root_pa
    entries = []
    for level, shift, name in ((4, 39, "pml4"), (3, 30, "pdpt"), (2, 21, "pd"), (1, 12, "pt")):
        idx = (va >> shift) & 0x1FF
        try:
            e = read_u64(table + idx * 8)
        except Exception as ex:  # the reader's "no data" error
            return {"stoppedAt": name, "tableAddress": table, "error": f"{type(ex).__name__}: {ex}", "entries": entries}
        entries.append(e)
        if not e & 1:
            return {"stoppedAt": name, "tableAddress": table, "error": f"{name}[{idx}] not present (0x{e:x})", "entries": entries}
        if level in (3, 2) and e & 0x80:  # PS: 1 GiB or 2 MiB page
            size = 1 << shift
            return {"pa": (e & mask & ~(size - 1)) | (va & (size - 1)), "entries": entries}
        table = e & mask
        if level == 1:
            return {"pa": table | (va & 0xFFF), "entries": entries}
    raise AssertionError("unreachable")
