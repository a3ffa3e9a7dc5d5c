#!/usr/bin/env python3
"""bench/bulk.py: the TCP bulk source and sink of bench/run's `tcp` scenario.

  bulk.py source PORT BYTES   listen on 127.0.0.1:PORT; every connection gets BYTES zero bytes
                              (4 MiB send() calls), then the source closes it. One thread per connection.
  bulk.py sink PORT           connect to 127.0.0.1:PORT, read until EOF into a 4 MiB buffer,
                              print "BYTES SECONDS".
Both are syscall-bound (4 MiB per call), so the direct path is far faster than any forwarder."""
import socket
import sys
import threading
import time

CHUNK = 4 * 1024 * 1024


def serve(conn, total):
    data = memoryview(bytes(CHUNK))
    with conn:
        left = total
        try:
            while left > 0:
                left -= conn.send(data[: min(CHUNK, left)])
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def source(port, total):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn, total), daemon=True).start()


def sink(port):
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    t0 = time.monotonic()
    total = 0
    with socket.create_connection(("127.0.0.1", port)) as conn:
        while True:
            n = conn.recv_into(view)
            if n == 0:
                break
            total += n
    print(total, f"{time.monotonic() - t0:.3f}")


if sys.argv[1] == "source":
    source(int(sys.argv[2]), int(sys.argv[3]))
else:
    sink(int(sys.argv[2]))
