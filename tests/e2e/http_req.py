#!/usr/bin/env python3
"""One HTTP request to a clonekit service; prints 'STATUS BODY' on one line.

http_req.py [--unix SOCK | --tcp HOST:PORT] [--token-file F] [-H 'K: V']...
            [--body-file F] METHOD PATH [BODY]
The body is sent as application/json unless a Content-Type header is given.
"""
import argparse, http.client, socket, sys

ap = argparse.ArgumentParser()
ap.add_argument("--unix")
ap.add_argument("--tcp")
ap.add_argument("--token-file")
ap.add_argument("-H", action="append", default=[])
ap.add_argument("--body-file")
ap.add_argument("--timeout", type=float, default=30)
ap.add_argument("method")
ap.add_argument("path")
ap.add_argument("body", nargs="?")
a = ap.parse_args()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


if a.unix:
    c = UnixConnection(a.unix, a.timeout)
else:
    host, port = a.tcp.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=a.timeout)
headers = {}
for h in a.H:
    k, v = h.split(":", 1)
    headers[k.strip()] = v.strip()
if a.token_file:
    headers.setdefault("Authorization", "Bearer " + open(a.token_file).read().strip())
body = None
if a.body_file:
    body = open(a.body_file, "rb").read()
elif a.body is not None:
    body = a.body.encode()
if body is not None:
    headers.setdefault("Content-Type", "application/json")
try:
    c.request(a.method, a.path, body=body, headers=headers)
    r = c.getresponse()
    print(r.status, r.read().decode(errors="replace").replace("\n", " "))
except (ConnectionError, OSError) as e:
    print("000", type(e).__name__, e)
