"""Three instances of the conformance app sharing one PostgreSQL database and
one Redis server act as one: SSE broadcasts and replay across instances, one
rate limit, one cache, jobs completed exactly once (also when an instance is
killed with SIGKILL while running jobs), cron occurrences run once, and a
Redis outage answered with 503 and recovered from without a restart.

Run by tests/cluster/run.sh (which provides DK_TEST_PG_URL through
tests/db/with-postgres.sh); it starts redis-server itself."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))

from dk import Server, free_port  # noqa: E402
from test_sse import SSEClient  # noqa: E402

PG_URL = os.environ.get("DK_TEST_PG_URL")
LEASE_MS = 4000


def wait_until(pred, timeout, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Redis:
    """A throwaway redis-server on 127.0.0.1 (no persistence)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="dk-redis-")
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until(self.ping, 10, 0.05):
            raise RuntimeError("redis-server did not start")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        self.log.close()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port


@unittest.skipUnless(PG_URL, "needs DK_TEST_PG_URL (run through tests/cluster/run.sh)")
class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.env = {"DK_JOBS_LEASE_MS": str(LEASE_MS), "DK_JOBS_POLL_MS": "250",
                   "DK_JOBS_BACKOFF_MS": "100", "DK_SSE_HEARTBEAT_MS": "0",
                   "DONKEY_LOG_LEVEL": "info"}
        cls.nodes = []
        try:
            # One after the other: the first one creates the shared schema.
            for _ in range(3):
                cls.nodes.append(cls.start_node())
        except BaseException:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    @classmethod
    def start_node(cls):
        return Server("--db", PG_URL, "--redis", cls.redis.url, env=cls.env)

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            if n is not None:
                n.__exit__(None, None, None)
        cls.redis.close()

    def tearDown(self):
        if hasattr(self, "_outcome"):
            failed = any(e for _, e in getattr(self._outcome, "errors", []) if e)
            result = getattr(self._outcome, "result", None)
            if result is not None and (result.failures or result.errors):
                failed = True
            if failed:
                for i, n in enumerate(self.nodes):
                    if n is not None:
                        sys.stderr.write("---- instance %d log (tail) ----\n%s\n"
                                         % (i + 1, n.output()[-4000:]))

    def node(self, i):
        return self.nodes[i]

    # ---------------------------------------------------------------- #

    def test_1_startup_log_names_backends(self):
        for n in self.nodes:
            out = n.output()
            line = [l for l in out.splitlines() if "Background services started" in l]
            self.assertTrue(line, out)
            for want in ('"database":"postgres"', '"cache":"redis"', '"rateLimit":"redis"',
                         '"events":"redis"', '"sse":"redis"', '"cron":"redis"',
                         'shared, LISTEN/NOTIFY'):
                self.assertIn(want, line[0])

    def test_2_sse_broadcast_reaches_other_instance_in_order_and_replays(self):
        channel = "cl-" + uuid.uuid4().hex[:8]
        c3 = SSEClient(self.node(2).port, [channel])
        self.assertEqual(c3.status, 200)
        c3.wait_for(lambda b: b"retry:" in b, 5)
        time.sleep(0.3)  # the stream is registered before the broadcasts
        ids = []
        for i in range(10):
            r = self.node(0).call("conf.broadcast",
                                  {"channel": channel, "event": "tick", "data": {"i": i}})
            self.assertEqual(r.status, 200, r)
        self.assertTrue(c3.wait_for(lambda b: b.count(b"event: tick") >= 10, 10), c3.body)
        evs = [e for e in c3.events() if e["event"] == "tick"]
        self.assertEqual([json.loads(e["data"][0])["i"] for e in evs], list(range(10)))
        ids = [e["id"] for e in evs]
        self.assertEqual(len(set(ids)), 10)
        # Stream ids: increasing (ms-seq) across the cluster.
        key = [tuple(int(x) for x in i.split("-")) for i in ids]
        self.assertEqual(key, sorted(key))
        c3.close()

        # Events broadcast while the client is away, through instance 3 and 1.
        for i in range(10, 15):
            src = self.node(2) if i % 2 else self.node(0)
            r = src.call("conf.broadcast", {"channel": channel, "event": "tick", "data": {"i": i}})
            self.assertEqual(r.status, 200, r)
        time.sleep(0.5)  # instance 2 has read them from the stream
        c2 = SSEClient(self.node(1).port, [channel], last_event_id=ids[6])
        self.assertTrue(c2.wait_for(lambda b: b.count(b"event: tick") >= 8, 10), c2.body)
        got = [json.loads(e["data"][0])["i"] for e in c2.events() if e["event"] == "tick"]
        self.assertEqual(got, list(range(7, 15)))
        self.assertNotIn(b"event: reset", c2.body)
        c2.close()

    def test_3_rate_limit_shared(self):
        statuses = []
        for i in range(6):
            r = self.node(i % 3).call("conf.limited", {})
            statuses.append(r.status)
        self.assertEqual(statuses, [200, 200, 200, 429, 429, 429])

    def test_4_cache_shared(self):
        key = "cl:" + uuid.uuid4().hex
        r = self.node(0).call("conf.cache.set", {"key": key, "value": {"n": 42, "s": "x"}})
        self.assertEqual(r.status, 200, r)
        r = self.node(2).call("conf.cache.get", {"key": key})
        self.assertEqual(r.json, {"value": {"n": 42, "s": "x"}})
        # Glob characters Redis would treat as classes stay literal.
        self.node(1).call("conf.cache.set", {"key": key + "[a]", "value": 1})
        self.node(1).call("conf.cache.set", {"key": key + "b", "value": 2})
        r = self.node(0).call("conf.cache.keys", {"pattern": key + "[a]"})
        self.assertEqual(r.json["keys"], [key + "[a]"])
        r = self.node(0).call("conf.cache.keys", {"pattern": key + "?"})
        self.assertEqual(r.json["keys"], [key + "b"])

    def test_5_events_cross_instances(self):
        name = "conf.cl" + uuid.uuid4().hex[:6]
        r = self.node(0).call("conf.events.emit", {"event": name, "data": {"k": 1}})
        self.assertEqual(r.status, 200, r)
        r = self.node(1).call("conf.events.history", {"pattern": name})
        self.assertEqual([e["data"] for e in r.json["events"]], [{"k": 1}])

    def test_6_jobs_exactly_once(self):
        before = self.node(0).call("conf.cluster.runs", {}).json
        ids = []
        lock = threading.Lock()

        def enqueue(node, n):
            for i in range(n):
                r = node.call("conf.job", {"name": "count", "data": {"i": i}})
                self.assertEqual(r.status, 200, r)
                with lock:
                    ids.append(r.json["id"])

        ts = [threading.Thread(target=enqueue, args=(self.node(k), 67 if k < 2 else 66))
              for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(len(ids), 200)

        def done():
            runs = self.node(1).call("conf.cluster.runs", {}).json
            return runs if runs["distinct"] - before["distinct"] >= 200 else None

        runs = wait_until(done, 60, 0.2)
        self.assertIsNotNone(runs, self.node(1).call("conf.cluster.runs", {}).json)
        time.sleep(1)
        runs = self.node(1).call("conf.cluster.runs", {}).json
        self.assertEqual(runs["total"] - before["total"], 200)
        self.assertEqual(runs["duplicates"], [])
        statuses = {}
        for i in ids:
            j = self.node(i % 3).call("conf.jobGet", {"id": i}).json
            statuses[j["status"]] = statuses.get(j["status"], 0) + 1
            self.assertEqual(j["attempts"], 1, j)
        self.assertEqual(statuses, {"completed": 200})
        # Every instance took part.
        pids = {self.node(i % 3).call("conf.jobGet", {"id": i}).json["result"]["pid"]
                for i in ids}
        self.assertGreaterEqual(len(pids), 2)

    def test_7_cron_runs_once_per_occurrence(self):
        counts = lambda: sum(n.call("conf.cron.count", {}).json["runs"] for n in self.nodes)
        a = counts()
        time.sleep(4)
        b = counts()
        # conf-tick fires every second: ~4 runs in the cluster, not ~12.
        self.assertGreaterEqual(b - a, 2)
        self.assertLessEqual(b - a, 6)

    def test_8_kill9_while_running_jobs_loses_none(self):
        before = self.node(0).call("conf.cluster.runs", {}).json
        ids = []
        for i in range(30):
            r = self.node(i % 3).call("conf.job", {"name": "slowCount", "data": {"ms": 1000}})
            self.assertEqual(r.status, 200, r)
            ids.append(r.json["id"])
        # Let every instance claim some, then kill instance 1 mid-run.
        time.sleep(0.7)
        victim = self.nodes[0]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        survivors = [self.nodes[1], self.nodes[2]]

        def all_completed():
            for i in ids:
                j = survivors[i % 2].call("conf.jobGet", {"id": i}).json
                if j["status"] != "completed":
                    return False
            return True

        self.assertTrue(wait_until(all_completed, 60, 0.5))
        runs = survivors[0].call("conf.cluster.runs", {}).json
        self.assertEqual(runs["distinct"] - before["distinct"], 30)
        self.assertEqual(runs["duplicates"], [], "a job ran to completion twice")
        retried = [i for i in ids
                   if survivors[0].call("conf.jobGet", {"id": i}).json["attempts"] > 1]
        self.assertTrue(retried, "the killed instance held no running job")
        # A replacement instance joins the cluster.
        victim.__exit__(None, None, None)
        self.nodes[0] = self.start_node()

    def test_9_redis_outage_503_then_recovery(self):
        stop = threading.Event()
        results = []

        def load():
            i = 0
            while not stop.is_set():
                n = self.nodes[i % 3]
                t0 = time.time()
                try:
                    r = n.call("conf.cache.set", {"key": "load%d" % (i % 10), "value": i},
                               timeout=5)
                    results.append((time.time(), r.status, time.time() - t0))
                except OSError as e:
                    results.append((time.time(), "error %s" % e, time.time() - t0))
                i += 1
                time.sleep(0.01)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(1)
            down_at = time.time()
            self.redis.stop()
            time.sleep(2)
            up_at = time.time()
            self.redis.start()
            # Back to full service within a few seconds.
            ok_again = wait_until(
                lambda: any(ts > up_at and st == 200 for ts, st, _ in results[-20:]), 10)
            time.sleep(3)
        finally:
            stop.set()
            t.join()
        self.assertTrue(ok_again)
        during = [st for ts, st, _ in results if down_at + 0.3 < ts < up_at]
        self.assertTrue(during)
        self.assertEqual(set(during), {503}, during)
        # Once one request succeeded, every instance is back within the
        # client's backoff (at most 2 s).
        first_ok = min(ts for ts, st, _ in results if ts > up_at and st == 200)
        after = [st for ts, st, _ in results if ts > first_ok + 2.1]
        self.assertTrue(after)
        self.assertEqual(set(after), {200}, after)
        self.assertLess(max(d for _, _, d in results), 2.0, "a request hung")
        for n in self.nodes:
            self.assertIsNone(n.proc.poll(), n.output()[-3000:])
            out = n.output()
            self.assertIn("[Redis] connection lost", out)
            self.assertIn("[Redis] connection restored", out)
        # Everything works again, across instances: SSE, cache, rate limit key space.
        channel = "after-" + uuid.uuid4().hex[:6]
        c = SSEClient(self.node(1).port, [channel])
        c.wait_for(lambda b: b"retry:" in b, 5)
        time.sleep(3)  # readers reconnected (backoff at most 2 s + connect)
        r = self.node(2).call("conf.broadcast", {"channel": channel, "event": "back", "data": 1})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(c.wait_for(lambda b: b"event: back" in b, 10), c.body)
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
