#!/usr/bin/env python3
"""bench/idleconns.py PORT COUNT HOLD_SECONDS [--tls]: opens COUNT keep-alive connections to
127.0.0.1:PORT, sends one GET / on each and reads its response (so each connection has done
one full exchange and sits idle as a browser's would), prints "open N failed F" when all are
open, holds them HOLD_SECONDS, then closes them and exits. Used by bench/run's `idle` scenario."""
import asyncio
import resource
import sys

port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


async def one(sem, conns, failures):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            writer.write(REQUEST)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await asyncio.wait_for(reader.readexactly(length), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(head.split(b"\r\n")[0])
            conns.append(writer)
        except Exception as error:  # noqa: BLE001 - counted, not fatal
            failures.append(repr(error))


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sem = asyncio.Semaphore(200)
    conns, failures = [], []
    await asyncio.gather(*(one(sem, conns, failures) for _ in range(count)))
    print(f"open {len(conns)} failed {len(failures)}" + (f" first: {failures[0]}" if failures else ""), flush=True)
    await asyncio.sleep(hold)
    for writer in conns:
        writer.close()
    await asyncio.sleep(0.5)


asyncio.run(main())
