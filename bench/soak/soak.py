#!/usr/bin/env python3
"""Soak test: the conformance app under mixed load for a bounded time, on
loopback only.

    bench/soak/soak.py [--seconds 300] [--build-dir build] [--threads 2]

Load, all at once: typed requests (echo, notes on a SQLite file, cache,
events, validation failures, 404s), SSE clients connecting to random channels,
reading for a while and leaving, broadcasts to those channels, and jobs.

Pass criteria (exit status 0, else 1 with the reason):
  * no 5xx nobody asked for (the load never asks for one), no malformed answer;
  * the server never exits;
  * resident memory at the end grew by less than 5% over its value after the
    warm-up (first 20% of the run; medians of several samples; the SSE replay
    windows are filled before the run starts);
  * the open file descriptors return to the count measured after warm-up once
    every client has left (allowing a few seconds to settle).
A JSON summary line is printed at the end.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_links(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return sorted(out)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.unexpected = []

    def add(self, key, ok, detail=None):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if not ok and len(self.unexpected) < 50:
                self.unexpected.append((key, detail))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    ap.add_argument("--build-dir", default=os.environ.get("DK_BUILD_DIR", "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, default=6, help="request threads")
    ap.add_argument("--sse", type=int, default=4, help="SSE client threads")
    args = ap.parse_args()

    binary = os.path.join(args.build_dir, "examples", "conformance", "conformance")
    tmp = tempfile.mkdtemp(prefix="dk-soak-")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w")
    env = dict(os.environ, DONKEY_LOG_LEVEL="warn", DK_JOBS_BACKOFF_MS="20",
               DK_SSE_HEARTBEAT_MS="1000")
    # SOAK_WRAP, e.g. "gdb -batch -ex run -ex bt --args", runs the server under a debugger.
    wrap = os.environ.get("SOAK_WRAP", "").split()
    proc = subprocess.Popen(wrap + [binary, "--port", str(port), "--threads", str(args.threads),
                             "--db", "sqlite:" + os.path.join(tmp, "soak.db")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                print("soak: server did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)

    stats = Stats()
    stop = threading.Event()
    channels = ["c%d" % i for i in range(8)]

    def call(conn, route, body):
        conn.request("POST", "/" + route, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, data

    def requester(i):
        rnd = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        n = 0
        while not stop.is_set():
            n += 1
            kind = rnd.choice(["echo", "echo", "notes", "cache", "events", "bad", "missing",
                               "broadcast", "job", "jobget"])
            try:
                if kind == "echo":
                    st, data = call(conn, "conf.echo", {"name": "s%d" % n, "n": n, "tags": ["a"]})
                    ok = st == 200 and json.loads(data)["n"] == n
                elif kind == "notes":
                    st, data = call(conn, "conf.notes.add", {"text": "note %d/%d" % (i, n)})
                    ok = st == 200
                elif kind == "cache":
                    key = "k%d" % rnd.randrange(200)
                    if rnd.random() < 0.5:
                        st, data = call(conn, "conf.cache.set",
                                        {"key": key, "value": {"n": n}, "ttlMs": 5000})
                    else:
                        st, data = call(conn, "conf.cache.get", {"key": key})
                    ok = st == 200
                elif kind == "events":
                    st, data = call(conn, "conf.events.emit", {"event": "soak.tick", "data": n})
                    ok = st == 200
                elif kind == "bad":
                    st, data = call(conn, "conf.echo", {"name": 5})
                    ok = st == 400
                elif kind == "missing":
                    st, data = call(conn, "conf.nope", {})
                    ok = st == 404
                elif kind == "broadcast":
                    st, data = call(conn, "conf.broadcast",
                                    {"channel": rnd.choice(channels), "event": "tick",
                                     "data": {"n": n}})
                    ok = st == 200
                elif kind == "job":
                    st, data = call(conn, "conf.job", {"name": "ok", "data": {"n": n}})
                    ok = st == 200
                else:
                    st, data = call(conn, "conf.jobGet", {"id": 10**9 + n})
                    ok = st in (200, 404)
                stats.add(kind, ok, (st, data[:200]))
            except (OSError, http.client.HTTPException, ValueError) as e:
                stats.add(kind, False, repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.close()

    def sse_client(i):
        rnd = random.Random(1000 + i)
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                ch = rnd.choice(channels)
                s.sendall(b"GET /conf.sse?channel=%s HTTP/1.1\r\nHost: x\r\n\r\n" % ch.encode())
                first = s.recv(4096)
                ok = first.startswith(b"HTTP/1.1 200")
                stay = time.time() + rnd.uniform(0.2, 2.0)
                while ok and time.time() < stay and not stop.is_set():
                    s.settimeout(max(0.05, stay - time.time()))
                    try:
                        if not s.recv(65536):
                            ok = False
                    except socket.timeout:
                        pass
                s.close()
                stats.add("sse", ok, first[:100])
            except OSError as e:
                stats.add("sse", False, repr(e))
                time.sleep(0.1)

    # One request of each kind first (lazily opened files, pools), then the
    # idle descriptor count is the reference for the end.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for route, body in (("conf.echo", {"name": "w"}), ("conf.notes.add", {"text": "w"}),
                        ("conf.cache.set", {"key": "w", "value": 1}),
                        ("conf.events.emit", {"event": "soak.w"}),
                        ("conf.job", {"name": "ok", "data": {}})):
        call(c, route, body)
    c.close()
    # Bounded buffers that the load fills at its own pace would still be
    # growing when memory is measured: each SSE channel keeps its last 1000
    # frames for replay (sse replay_max_events), about 30 s of this load. Fill
    # them first, so that growth after warm-up means a leak, not a window
    # filling up (and the windows wrap during the run).
    def prefill(ch):
        pc = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        for k in range(1000):
            call(pc, "conf.broadcast", {"channel": ch, "event": "tick", "data": {"n": 10**6 + k}})
        pc.close()

    fill = [threading.Thread(target=prefill, args=(ch,)) for ch in channels]
    for t in fill:
        t.start()
    for t in fill:
        t.join()
    time.sleep(1.0)
    initial_links = fd_links(proc.pid)

    samples = []
    threads = [threading.Thread(target=requester, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=sse_client, args=(i,)) for i in range(args.sse)]
    t0 = time.time()
    for t in threads:
        t.start()
    warm = t0 + args.seconds * 0.2
    end = t0 + args.seconds
    while time.time() < end and proc.poll() is None:
        time.sleep(1)
        samples.append((time.time() - t0, rss_kb(proc.pid), nfds(proc.pid)))
    stop.set()
    for t in threads:
        t.join()

    result = {"seconds": args.seconds, "requests": dict(stats.counts)}
    failures = []
    if proc.poll() is not None:
        failures.append("server exited with %s" % proc.returncode)
    else:
        warm_samples = [s for s in samples if s[0] >= args.seconds * 0.2]
        after_warm = [s for s in warm_samples[:5]] or samples[-5:]
        last = samples[-5:]
        rss_warm = statistics.median(s[1] for s in after_warm)
        rss_end = statistics.median(s[1] for s in last)
        growth = (rss_end - rss_warm) / rss_warm * 100.0
        result.update(rss_warm_kb=rss_warm, rss_end_kb=rss_end, rss_growth_pct=round(growth, 2))
        if growth >= 5.0:
            failures.append("resident memory grew %.1f%% after warm-up" % growth)
        # Descriptors once every client has gone, against the idle count
        # measured before the load.
        settle = time.time() + 10
        # The database pool opens connections on demand up to its bound:
        # those are not counted (they are not per-client).
        db = os.path.join(tmp, "soak.db")

        def client_fds():
            return len([l for l in fd_links(proc.pid) if not l.startswith(db)])

        start_fds = result["fds_start"] = len([l for l in initial_links if not l.startswith(db)])
        fds = client_fds()
        while fds > start_fds and time.time() < settle:
            time.sleep(0.2)
            fds = client_fds()
        result.update(fds_end=fds, fds_peak=max(s[2] for s in samples) if samples else None)
        if fds > start_fds:
            extra = [l for l in fd_links(proc.pid) if not l.startswith(db)]
            for link in initial_links:
                if link in extra:
                    extra.remove(link)
            failures.append("file descriptors %d after clients left, %d at start; new: %s" %
                            (fds, start_fds, extra))
    if stats.unexpected:
        failures.append("unexpected answers: %r" % stats.unexpected[:10])
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        failures.append("server did not stop on SIGTERM")
    log.close()
    result["failures"] = failures
    print(json.dumps(result))
    if failures:
        # Keep the server log (and database) for a look.
        print("soak: FAILED, server log kept in %s" % os.path.join(tmp, "server.log"),
              file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
