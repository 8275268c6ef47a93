"""Fault injection against the conformance app on a SQLite file: kill -9 under
load (every acknowledged note and job survives the restart), the database
locked by another process and the disk full (503 SERVICE_UNAVAILABLE, no
crash, service resumes), SIGTERM under load (listener closed, in-flight
requests answered, SSE streams ended cleanly, jobs finished or requeued,
exit within the grace period, nothing lost)."""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from dk import Server

FAST_RETRY = {"DK_JOBS_BACKOFF_MS": "20"}


class Load:
    """Threads adding notes (and optionally jobs) until stopped; records what
    the server acknowledged with 200 and any unexpected status."""

    def __init__(self, srv, threads=4, jobs=False):
        self.srv = srv
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.notes = []
        self.jobs = []
        self.unexpected = []
        self.threads = [threading.Thread(target=self.run, args=(i, jobs)) for i in range(threads)]

    def run(self, i, jobs):
        n = 0
        while not self.stop.is_set():
            n += 1
            text = "t%d-%d" % (i, n)
            try:
                if jobs and n % 3 == 0:
                    r = self.srv.call("conf.job", {"name": "ok", "data": {"k": text}}, timeout=10)
                    if r.status == 200:
                        with self.lock:
                            self.jobs.append(r.json["id"])
                        continue
                else:
                    r = self.srv.call("conf.notes.add", {"text": text}, timeout=10)
                    if r.status == 200:
                        with self.lock:
                            self.notes.append(text)
                        continue
                if r.status != 503:
                    with self.lock:
                        self.unexpected.append((r.status, r.body[:200]))
            except (OSError, ValueError):
                # Connection refused/reset once the server is gone, or a
                # response cut by kill -9: not acknowledged, nothing to check.
                time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def wait_job(srv, job_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = srv.call("conf.jobGet", {"id": job_id})
        if r.status == 200 and r.json["status"] in ("completed", "failed"):
            return r.json["status"]
        time.sleep(0.02)
    return None


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dk-faults-")
        self.path = os.path.join(self.dir, "app.db")
        self.db = "sqlite:" + self.path

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def listed_notes(self, srv):
        r = srv.call("conf.notes.list", {})
        self.assertEqual(r.status, 200)
        return {n["text"] for n in r.json["notes"]}


class Kill9(Base):
    def test_acknowledged_notes_and_jobs_survive_kill_9(self):
        srv = Server("--db", self.db, "--threads", "2", env=FAST_RETRY)
        try:
            with Load(srv, threads=4, jobs=True) as load:
                time.sleep(1.5)
                srv.kill()  # SIGKILL in the middle of writes
        finally:
            srv.kill()
            srv.__exit__(None, None, None)
        self.assertEqual(load.unexpected, [])
        self.assertGreater(len(load.notes), 20)
        self.assertGreater(len(load.jobs), 5)
        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            missing = set(load.notes) - self.listed_notes(srv)
            self.assertEqual(missing, set(), "acknowledged notes lost after kill -9")
            for j in load.jobs:
                self.assertEqual(wait_job(srv, j), "completed", j)
        finally:
            srv.__exit__(None, None, None)


class DatabaseFaults(Base):
    def test_locked_database_is_503_then_recovers(self):
        with Server("--db", self.db) as srv:
            self.assertEqual(srv.call("conf.notes.add", {"text": "before"}).status, 200)
            holder = sqlite3.connect(self.path, timeout=1, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                t0 = time.time()
                r = srv.call("conf.notes.add", {"text": "locked"}, timeout=30)
                waited = time.time() - t0
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.json["error"], "SERVICE_UNAVAILABLE")
                self.assertGreater(waited, 4)  # the 5 s busy timeout was honoured
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            self.assertEqual(srv.call("conf.notes.add", {"text": "after"}).status, 200)
            self.assertEqual(self.listed_notes(srv), {"before", "after"})
            self.assertIsNone(srv.proc.poll())

    def test_disk_full_is_503_then_recovers(self):
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        if rc != 0:
            self.skipTest("cannot mount a small tmpfs here (needs root)")
        try:
            db = "sqlite:" + os.path.join(mnt, "app.db")
            with Server("--db", db) as srv:
                self.assertEqual(srv.call("conf.notes.add", {"text": "first"}).status, 200)
                filler = os.path.join(mnt, "filler")
                with open(filler, "wb", buffering=0) as f:  # close() has nothing left to flush
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                            f.flush()
                    except OSError:
                        pass
                statuses = set()
                for i in range(2000):
                    r = srv.call("conf.notes.add", {"text": "x%d-" % i + "y" * 480})
                    statuses.add(r.status)
                    if r.status == 503:
                        self.assertEqual(r.json["error"], "SERVICE_UNAVAILABLE")
                        break
                self.assertIn(503, statuses)
                self.assertNotIn(500, statuses)
                self.assertIsNone(srv.proc.poll())
                os.unlink(filler)
                ok = False
                for _ in range(20):
                    if srv.call("conf.notes.add", {"text": "after"}).status == 200:
                        ok = True
                        break
                    time.sleep(0.1)
                self.assertTrue(ok, "no recovery after the disk was freed")
                self.assertIn("first", self.listed_notes(srv))
        finally:
            subprocess.run(["umount", "-l", mnt])


class Sigterm(Base):
    def test_sigterm_under_load_loses_nothing(self):
        srv = Server("--db", self.db, "--threads", "2", "--shutdown-grace", "5s",
                     env=FAST_RETRY)
        try:
            sse = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sse.sendall(b"GET /conf.sse?channel=a HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sse.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            slow = []
            for i in range(3):
                r = srv.call("conf.job", {"name": "slow", "data": {"i": i}})
                self.assertEqual(r.status, 200)
                slow.append(r.json["id"])
            with Load(srv, threads=4, jobs=True) as load:
                time.sleep(1.0)
                t0 = time.time()
                srv.proc.send_signal(signal.SIGTERM)
                rc = srv.proc.wait(timeout=15)
                took = time.time() - t0
            self.assertEqual(rc, 0, srv.output()[-2000:])
            self.assertLess(took, 5 + 2)
            self.assertEqual(load.unexpected, [])
            # The SSE stream was ended with the chunked terminator, then closed.
            data = first
            sse.settimeout(5)
            while True:
                chunk = sse.recv(65536)
                if not chunk:
                    break
                data += chunk
            sse.close()
            self.assertTrue(data.endswith(b"0\r\n\r\n"), data[-200:])
            # The listener is closed.
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        finally:
            srv.kill()
            srv.__exit__(None, None, None)
        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            missing = set(load.notes) - self.listed_notes(srv)
            self.assertEqual(missing, set())
            for j in load.jobs + slow:
                self.assertEqual(wait_job(srv, j), "completed", j)
        finally:
            srv.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
