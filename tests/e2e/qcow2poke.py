#!/usr/bin/env python3
"""Reads and pokes qcow2 header fields and L1/L2 entries of real images.

The corruption suite uses it to damage qemu-img-made images in exact places.
  qcow2poke.py IMG header FIELD [VALUE]    (fields: see FIELDS)
  qcow2poke.py IMG l1 INDEX [VALUE]
  qcow2poke.py IMG l2 L1INDEX L2INDEX [VALUE]
  qcow2poke.py IMG first-l2 KIND            offset of the first data|compressed|zero L2 entry
  qcow2poke.py IMG bytes OFFSET HEX         write raw bytes
Values are decimal or 0x-hex; reads print 0x-hex.
"""
import struct
import sys

FIELDS = {  # name: (offset, struct format)
    "magic": (0, ">I"), "version": (4, ">I"), "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"), "cluster_bits": (20, ">I"), "size": (24, ">Q"),
    "crypt_method": (32, ">I"), "l1_size": (36, ">I"), "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"), "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"), "snapshots_offset": (64, ">Q"),
    "incompatible_features": (72, ">Q"), "compatible_features": (80, ">Q"),
    "refcount_order": (96, ">I"), "header_length": (100, ">I"), "compression_type": (104, ">B"),
}


def rw(f, off, fmt, value=None):
    f.seek(off)
    if value is None:
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    f.seek(off)
    f.write(struct.pack(fmt, value))
    return value


def geometry(f):
    bits = rw(f, 20, ">I")
    ext = rw(f, 72, ">Q") & (1 << 4) if rw(f, 4, ">I") == 3 else 0
    return bits, (16 if ext else 8)


def l2_slot(f, l1, l2):
    bits, esize = geometry(f)
    l1_off = rw(f, 40, ">Q")
    table = rw(f, l1_off + 8 * l1, ">Q") & 0x00FFFFFFFFFFFE00
    if table == 0:
        sys.exit("L1 entry %d is unallocated" % l1)
    return table + esize * l2


def main():
    img, what, *args = sys.argv[1:]
    num = lambda s: int(s, 0) & (2**64 - 1)  # bash arithmetic may hand us negatives
    with open(img, "r+b") as f:
        if what == "header":
            off, fmt = FIELDS[args[0]]
            print(hex(rw(f, off, fmt, num(args[1]) if len(args) > 1 else None)))
        elif what == "l1":
            off = rw(f, 40, ">Q") + 8 * num(args[0])
            print(hex(rw(f, off, ">Q", num(args[1]) if len(args) > 1 else None)))
        elif what == "l2":
            off = l2_slot(f, num(args[0]), num(args[1]))
            print(hex(rw(f, off, ">Q", num(args[2]) if len(args) > 2 else None)))
        elif what == "first-l2":
            bits, esize = geometry(f)
            l1_off, l1_size = rw(f, 40, ">Q"), rw(f, 36, ">I")
            for i in range(l1_size):
                table = rw(f, l1_off + 8 * i, ">Q") & 0x00FFFFFFFFFFFE00
                if not table:
                    continue
                for j in range((1 << bits) // esize):
                    e = rw(f, table + esize * j, ">Q")
                    kind = ("compressed" if e & (1 << 62) else "zero" if e & 1
                            else "data" if e & 0x00FFFFFFFFFFFE00 else None)
                    if kind == args[0]:
                        print(i, j, hex(e))
                        return
            sys.exit("no %s entry" % args[0])
        elif what == "bytes":
            f.seek(num(args[0]))
            f.write(bytes.fromhex(args[1]))
        else:
            sys.exit(__doc__)


if __name__ == "__main__":
    main()
