"""nbd_abuse.py URI ORACLE.raw: hostile requests against a read-only export.

Each request must fail with an error (or, where the server may serve it,
return the right bytes), and the connection must keep working afterwards.
libnbd's strict mode is turned off so that the requests reach the server.
Prints one line per case; exits non-zero on the first wrong answer.
"""
import errno
import os
import socket
import struct
import sys

import nbd

uri, oracle_path = sys.argv[1], sys.argv[2]
oracle = open(oracle_path, "rb").read()
size = len(oracle)


def connect():
    h = nbd.NBD()
    h.set_strict_mode(0)
    h.connect_uri(uri)
    return h


def expect_error(what, fn, errnos=None):
    try:
        fn()
    except nbd.Error as e:
        # libnbd gives the errno as a number or as its name, by version.
        code = getattr(errno, e.errno, None) if isinstance(e.errno, str) else e.errno
        if errnos and code not in errnos:
            sys.exit(f"{what}: failed with errno {e.errno} ({e.string}), wanted one of {errnos}")
        print(f"ok - {what}: refused ({e.string})")
        return
    sys.exit(f"{what}: succeeded, wanted an error")


def still_serves(h, what):
    got = h.pread(4096, size - 4096)
    if got != oracle[-4096:]:
        sys.exit(f"after {what}: the connection reads wrong bytes")


h = connect()
expect_error("read past the end", lambda: h.pread(4096, size - 512))
still_serves(h, "read past the end")
expect_error("read starting past the end", lambda: h.pread(512, size + (1 << 30)))
still_serves(h, "read starting past the end")
expect_error("write", lambda: h.pwrite(b"x" * 4096, 0), [errno.EPERM, errno.EROFS])
still_serves(h, "write")
expect_error("trim", lambda: h.trim(65536, 0), [errno.EPERM, errno.EROFS, errno.EINVAL])
still_serves(h, "trim")
expect_error("write zeroes", lambda: h.zero(65536, 0), [errno.EPERM, errno.EROFS, errno.EINVAL])
still_serves(h, "write zeroes")
if os.environ.get("BIG_READS") != "0" and size > (32 << 20) + 1:
    # The NBD spec allows servers to refuse requests over 32 MiB; nbdkit
    # serves up to 64 MiB. Either way: right bytes or a clean error.
    for n in ((32 << 20) + 1, (64 << 20) + 1):
        try:
            got = h.pread(n, 0)
            if got != oracle[:n]:
                sys.exit(f"{n}-byte read returned wrong bytes")
            print(f"ok - {n}-byte read served correctly")
        except nbd.Error as e:
            print(f"ok - {n}-byte read refused ({e.string})")
        still_serves(h, f"{n}-byte read")
h.shutdown()



def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("server closed the connection")
        data += chunk
    return data


def raw_read(s, handle, offset, length):
    """One NBD_CMD_READ on a raw socket; returns (error, data)."""
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, handle, offset, length))
    magic, error, got = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != 0x67446698 or got != handle:
        sys.exit(f"bad simple reply: magic {magic:#x} handle {got}")
    return error, (b"" if error else recv_exact(s, length))


# Oversized reads sent on a hand-made connection (libnbd refuses to send
# them): the server must answer with an error and keep the connection.
if os.environ.get("BIG_READS") != "0":
    s = socket.socket(socket.AF_UNIX)
    s.connect(uri.split("socket=")[1])
    hello = recv_exact(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
    s.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes
    name = uri.split("///")[1].split("?")[0].encode()
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 1, len(name)) + name)  # NBD_OPT_EXPORT_NAME
    export_size, _flags = struct.unpack(">QH", recv_exact(s, 10))
    if export_size != size:
        sys.exit(f"raw handshake: size {export_size}, wanted {size}")
    for n in ((32 << 20) + 1, (64 << 20) + 1):
        error, data = raw_read(s, n, 0, n)
        if error == 0 and data != oracle[:n]:
            sys.exit(f"raw {n}-byte read returned wrong bytes")
        print(f"ok - raw {n}-byte read: " + ("served correctly" if error == 0 else f"error {error}"))
        error, data = raw_read(s, 7, size - 512, 512)
        if error or data != oracle[-512:]:
            sys.exit(f"after the raw {n}-byte read the connection no longer serves")
    s.close()

# Clients that leave with requests in flight. Debian 12's nbdkit 1.32
# aborts (its own assertion, with any plugin) when several replies of a
# leaving client are sent in parallel, so the caller says how many to
# leave behind: 1 against a parallel server, more against --threads=1.
inflight = int(os.environ.get("INFLIGHT", "1"))
for k in range(5):
    h = connect()
    for i in range(inflight):
        h.aio_pread(nbd.Buffer(8 << 20), (i << 20) % (size - (8 << 20)))
    del h
print(f"ok - 5 clients left with {inflight} request(s) in flight")

# Garbage instead of a handshake, and a handshake cut short.
path = uri.split("socket=")[1]
for junk in (os.urandom(4096), b"NBDMAGIC"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.recv(64)
    s.sendall(junk)
    s.close()
print("ok - garbage and a cut handshake")

h = connect()
still_serves(h, "the hostile clients")
print("ok - a new client is served after all of it")
