"""ELF64 program headers of a vmcore, read and patched in place.

Standard library only; runs under Debian's /usr/bin/python3.
"""

import struct

import truthlib as T

PT_LOAD = 1
PT_NOTE = 4


def phdrs(path):
    """Every program header as a dict (index, at, type, offset, vaddr, paddr,
    filesz, memsz; `at` is the header's own file offset), or None when path
    is not an ELF64 file."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2:
            return None
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        raw = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        p_type, _flags, off, vaddr, paddr, filesz, memsz = struct.unpack_from("<IIQQQQQ", raw, i * phentsize)
        out.append({"index": i, "at": phoff + i * phentsize, "type": p_type, "offset": off,
                    "vaddr": vaddr, "paddr": paddr, "filesz": filesz, "memsz": memsz})
    return out


def clear_direct_map_vaddrs(path):
    """Sets p_vaddr to 0 in every PT_LOAD of path that maps the direct map,
    so a reader must translate through the page tables. The kernel-text
    PT_LOAD (p_vaddr >= __START_KERNEL_map) is left alone. Returns
    (how many were cleared, p_vaddr of each PT_LOAD left alone)."""
    cleared = 0
    kept = []
    headers = phdrs(path) or []
    with open(path, "r+b") as f:
        for p in headers:
            if p["type"] != PT_LOAD:
                continue
            if T.PAGE_OFFSET <= p["vaddr"] < T.START_KERNEL_MAP:
                f.seek(p["at"] + 16)
                f.write(struct.pack("<Q", 0))
                cleared += 1
            else:
                kept.append(p["vaddr"])
    return cleared, kept
