#!/usr/bin/env python3
"""bench/realwork helper: N requests waiting at once on conf.fetch of a local
upstream that answers after DELAY seconds. Prints one line:

    FETCH n=<N> answered=<ok> all_within_s=<t> rss_growth_kib_per_request=<g>

Usage: fetch_wait.py CONFORMANCE_BINARY [--n 1000] [--delay 1.0]
Loopback only; everything is bounded in time."""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def upstream(reader, writer, delay):
    try:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


async def one(port, up_port):
    body = ('{"url":"http://127.0.0.1:%d/"}' % up_port).encode()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"POST /conf.fetch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await w.drain()
    data = await r.read()
    w.close()
    return data.startswith(b"HTTP/1.1 200")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=1.0)
    a = ap.parse_args()
    up_port = free_port()
    srv = await asyncio.start_server(lambda r, w: upstream(r, w, a.delay), "127.0.0.1", up_port,
                                     backlog=4096)
    port = free_port()
    proc = subprocess.Popen([a.binary, "--port", str(port), "--log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        # Warm up: the fetch thread and a few tasks exist before the baseline.
        await asyncio.gather(*[one(port, up_port) for _ in range(4)])
        base = rss_kib(proc.pid)
        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(one(port, up_port)) for _ in range(a.n)]
        peak = base
        while not all(t.done() for t in tasks) and time.monotonic() - t0 < 30:
            peak = max(peak, rss_kib(proc.pid))
            await asyncio.sleep(0.02)
        oks = [t.result() if t.done() and not t.exception() else False for t in tasks]
        took = time.monotonic() - t0
        print("FETCH n=%d answered=%d all_within_s=%.2f rss_growth_kib_per_request=%.1f"
              % (a.n, sum(oks), took, (peak - base) / a.n))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        srv.close()


if __name__ == "__main__":
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    asyncio.run(main())
