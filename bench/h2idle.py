#!/usr/bin/env python3
"""bench/h2idle.py PORT COUNT PID [--tls] [--no-request]: opens COUNT HTTP/2 connections to
127.0.0.1:PORT (TLS with ALPN h2 and SNI localhost, or h2c with prior knowledge), sends the
preface, an empty SETTINGS and (unless --no-request) one GET /healthz for localhost on each,
reads what comes back, then prints how much the resident memory of process PID grew per
connection while they sit idle. A rough gauge of what an idle HTTP/2 connection costs
(allocator retention after the burst included)."""
import socket
import ssl
import sys
import time

port, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
use_tls = "--tls" in sys.argv
send_request = "--no-request" not in sys.argv


def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def literal(name, value):
    # A literal field without indexing, no Huffman coding (RFC 7541 6.2.2).
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


block = literal(b":method", b"GET") + literal(b":scheme", b"https" if use_tls else b"http")
block += literal(b":path", b"/healthz") + literal(b":authority", b"localhost")
# HEADERS, END_STREAM | END_HEADERS, stream 1.
headers = len(block).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big") + block
start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols(["h2"])

before = rss_kib()
connections = []
for _ in range(count):
    connection = socket.create_connection(("127.0.0.1", port))
    if use_tls:
        connection = context.wrap_socket(connection, server_hostname="localhost")
    connection.sendall(start + (headers if send_request else b""))
    connections.append(connection)
time.sleep(2)
for connection in connections:
    connection.setblocking(False)
    try:
        while connection.recv(65536):
            pass
    except (BlockingIOError, ssl.SSLWantReadError):
        pass
time.sleep(2)
after = rss_kib()
print(f"{count} connections: RSS {before} -> {after} KiB, {(after - before) * 1024 / count:.0f} bytes per connection")
