"""Jobs through the conformance app: conf.job enqueues, conf.jobGet reads the
job; handlers ok, fail (always "boom") and slow (2 s). Includes a kill -9
recovery test on a SQLite file."""
import os
import re
import shutil
import tempfile
import time
import unittest

from dk import Server

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEYS = {"id", "name", "data", "status", "attempts", "maxAttempts", "result", "error",
        "createdAt", "startedAt", "completedAt"}
FAST_RETRY = {"DK_JOBS_BACKOFF_MS": "20"}


def enqueue(srv, name, data, **extra):
    body = {"name": name, "data": data}
    body.update(extra)
    r = srv.call("conf.job", body)
    assert r.status == 200, r
    return r.json["id"]


def wait_for(srv, job_id, statuses, timeout=10.0):
    """Polls conf.jobGet until the status is one of `statuses` (bounded)."""
    deadline = time.time() + timeout
    job = None
    while time.time() < deadline:
        r = srv.call("conf.jobGet", {"id": job_id})
        assert r.status == 200, r
        job = r.json
        if job["status"] in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError("job %r still %r after %.1f s" % (job_id, job and job["status"], timeout))


class Jobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=FAST_RETRY)

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_ok_job_completes_with_result(self):
        jid = enqueue(self.srv, "ok", {"x": [1, 2], "s": "é"})
        self.assertIsInstance(jid, int)
        job = wait_for(self.srv, jid, {"completed", "failed"}, 5)
        self.assertEqual(set(job.keys()) - {"runAt"}, KEYS)
        self.assertEqual(job["id"], jid)
        self.assertEqual(job["name"], "ok")
        self.assertEqual(job["status"], "completed")
        self.assertEqual(job["data"], {"x": [1, 2], "s": "é"})
        self.assertEqual(job["result"], {"done": True, "data": {"x": [1, 2], "s": "é"}})
        self.assertEqual(job["attempts"], 1)
        self.assertEqual(job["maxAttempts"], 3)
        self.assertIsNone(job["error"])
        for k in ("createdAt", "startedAt", "completedAt"):
            self.assertRegex(job[k], ISO_RE)
        self.assertLessEqual(job["createdAt"], job["startedAt"])
        self.assertLessEqual(job["startedAt"], job["completedAt"])

    def test_ok_job_starts_quickly(self):
        t0 = time.time()
        jid = enqueue(self.srv, "ok", None)
        wait_for(self.srv, jid, {"completed"}, 5)
        self.assertLess(time.time() - t0, 0.9)  # woken, not left for the 1 s poll

    def test_fail_job_uses_all_attempts(self):
        jid = enqueue(self.srv, "fail", {"n": 1})
        job = wait_for(self.srv, jid, {"failed", "completed"}, 10)
        self.assertEqual(job["status"], "failed")
        self.assertEqual(job["error"], "boom")
        self.assertEqual(job["attempts"], 3)
        self.assertIsNone(job["result"])
        self.assertRegex(job["completedAt"], ISO_RE)

    def test_max_attempts_respected(self):
        for n in (1, 2, 5):
            jid = enqueue(self.srv, "fail", None, maxAttempts=n)
            job = wait_for(self.srv, jid, {"failed"}, 10)
            self.assertEqual(job["attempts"], n)
            self.assertEqual(job["maxAttempts"], n)

    def test_slow_job_runs_then_completes(self):
        jid = enqueue(self.srv, "slow", {"k": 1})
        job = wait_for(self.srv, jid, {"running"}, 3)
        self.assertIsNone(job["completedAt"])
        self.assertRegex(job["startedAt"], ISO_RE)
        job = wait_for(self.srv, jid, {"completed"}, 6)
        self.assertEqual(job["result"], {"done": True})

    def test_unknown_job_and_bad_input(self):
        r = self.srv.call("conf.jobGet", {"id": 987654321})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json["error"], "NOT_FOUND")
        r = self.srv.call("conf.job", {"name": "nope", "data": 1})
        self.assertEqual(r.status, 400)
        self.assertIn('No handler registered for job "nope"', r.json["message"])
        r = self.srv.call("conf.job", {"name": "ok", "data": 1, "maxAttempts": 0})
        self.assertEqual(r.status, 400)
        r = self.srv.call("conf.job", {"name": "ok"})
        self.assertEqual(r.status, 400)


class Recovery(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dk-jobs-")
        self.db = "sqlite:" + os.path.join(self.dir, "jobs.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_kill_9_while_running_then_restart(self):
        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            ids = [enqueue(srv, "slow", {"i": i}) for i in range(4)]
            ok_id = enqueue(srv, "ok", {"before": True})
            wait_for(srv, ok_id, {"completed"}, 5)
            running = [wait_for(srv, i, {"running"}, 3) for i in ids]
            self.assertEqual(len(running), 4)
        finally:
            srv.kill()  # SIGKILL: nothing gets a chance to clean up
            srv.__exit__(None, None, None)

        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            # What was accepted before the crash is still there.
            self.assertEqual(srv.call("conf.jobGet", {"id": ok_id}).json["status"], "completed")
            for i in ids:
                job = wait_for(srv, i, {"completed", "failed"}, 15)
                self.assertEqual(job["status"], "completed")
                self.assertEqual(job["result"], {"done": True})
                self.assertEqual(job["attempts"], 2)  # the interrupted run counts
        finally:
            srv.__exit__(None, None, None)

    def test_pending_jobs_survive_a_clean_restart(self):
        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            ids = [enqueue(srv, "slow", {"i": i}) for i in range(7)]  # 5 run, 2 wait
            wait_for(srv, ids[0], {"running"}, 3)
        finally:
            srv.stop()
            srv.__exit__(None, None, None)
        srv = Server("--db", self.db, env=FAST_RETRY)
        try:
            for i in ids:
                self.assertEqual(wait_for(srv, i, {"completed", "failed"}, 15)["status"],
                                 "completed")
        finally:
            srv.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
