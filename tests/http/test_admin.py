"""The operations page (issue 17, docs/observability.md): --admin-token
enables /_donkey and the admin.* routes for `Authorization: Bearer TOKEN`
(anything else 401); the routes show and act on jobs and cron; the live
stream sends snapshots; the routes are in the manifest and OpenAPI."""
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

from dk import BUILD, CONFORMANCE, Server

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": "Bearer " + TOKEN}


def admin(srv, route, body=None, headers=AUTH):
    return srv.call("admin." + route, body or {}, headers=headers)


def wait_job(srv, jid, status, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = admin(srv, "jobs.get", {"id": jid}).json["job"]
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError("job %d never became %s: %r" % (jid, status, job))


class Auth(unittest.TestCase):
    def test_off_without_the_flag(self):
        with Server() as srv:
            self.assertEqual(srv.request("GET", "/_donkey").status, 404)
            self.assertEqual(srv.call("admin.overview", {}, headers=AUTH).status, 404)

    def test_bearer_token_or_401(self):
        bad = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
               {"Authorization": "Basic " + TOKEN}, {"Authorization": TOKEN},
               {"Authorization": "Bearer"}, {"Authorization": "Bearer " + TOKEN[:-1]}]
        with Server("--admin-token", TOKEN) as srv:
            for h in bad:
                r = srv.request("GET", "/_donkey", headers=h)
                self.assertEqual(r.status, 401, h)
                self.assertIn("bearer", r.headers.get("www-authenticate", "").lower())
                for route in ("overview", "whoami", "jobs.list", "jobs.retry", "cron.run"):
                    r = admin(srv, route, {"id": 1} if route == "jobs.retry" else {}, headers=h)
                    self.assertEqual(r.status, 401, (route, h))
                    self.assertEqual(r.json["error"], "UNAUTHORIZED")
                self.assertEqual(srv.request("GET", "/admin.live", headers=h).status, 401)
                self.assertEqual(srv.request("POST", "/_donkey", {}, headers=h).status, 401)
                self.assertEqual(admin(srv, "nope", {}, headers=h).status, 401)
            r = srv.request("GET", "/_donkey", headers=AUTH)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["content-type"].startswith("text/html"))
            self.assertIn(b"donkey", r.body)
            self.assertIn("frame-ancestors 'none'", r.headers["content-security-policy"])
            self.assertEqual(srv.request("GET", "/_donkey/", headers=AUTH).status, 200)
            self.assertEqual(admin(srv, "whoami").json, {"role": "admin"})
            self.assertEqual(admin(srv, "overview").status, 200)
            self.assertEqual(admin(srv, "nope").status, 404)
            self.assertEqual(srv.request("POST", "/_donkey", {}, headers=AUTH).status, 405)

    def test_admin_path_flag(self):
        with Server("--admin-token", TOKEN, "--admin-path", "/ops") as srv:
            self.assertEqual(srv.request("GET", "/ops", headers=AUTH).status, 200)
            self.assertEqual(srv.request("GET", "/_donkey", headers=AUTH).status, 404)


class Data(unittest.TestCase):
    def test_overview_counts_routes(self):
        with Server("--admin-token", TOKEN) as srv:
            for i in range(5):
                srv.call("conf.echo", {"name": "a%d" % i})
            srv.call("conf.crash", {})
            s = admin(srv, "overview").json
            routes = {r["route"]: r for r in s["routes"]}
            self.assertEqual(routes["conf.echo"]["requests"], 5)
            self.assertEqual(routes["conf.echo"]["errors"], 0)
            self.assertEqual(routes["conf.crash"]["errors"], 1)
            self.assertGreater(routes["conf.echo"]["p50"], 0)
            self.assertLessEqual(routes["conf.echo"]["p50"], routes["conf.echo"]["p99"])
            for k in ("rate", "errorRate", "p95", "sparkline", "inFlight"):
                self.assertIn(k, routes["conf.echo"])
            self.assertGreater(s["process"]["rssBytes"], 1e6)
            self.assertGreater(s["process"]["threads"], 2)
            self.assertIn("depth", s["jobs"])
            self.assertEqual(s["role"], "admin")
            for k in ("size", "open", "inUse", "waiting"):
                self.assertIn(k, s["db"])
            for k in ("hits", "misses", "size", "evictions"):
                self.assertIn(k, s["cache"])
            self.assertIn("channels", s["sse"])

    def test_cron_schedule_in_words_and_run_now(self):
        with Server("--admin-token", TOKEN) as srv:
            tasks = {t["name"]: t for t in admin(srv, "overview").json["cron"]}
            t = tasks["conf-report"]
            self.assertEqual(t["expression"], "0 3 * * 1")
            self.assertEqual(t["description"], "every Monday at 03:00")
            self.assertEqual(len(t["nextRuns"]), 3)
            self.assertEqual(t["runs"], 0)
            self.assertIsNone(t["lastResult"])
            self.assertEqual(tasks["conf-tick"]["description"], "every second")
            r = admin(srv, "cron.run", {"id": t["id"]})
            self.assertEqual(r.status, 200, r.body)
            deadline = time.time() + 5
            while time.time() < deadline:
                t = {x["name"]: x for x in admin(srv, "overview").json["cron"]}["conf-report"]
                if t["runs"] == 1:
                    break
                time.sleep(0.05)
            self.assertEqual(t["runs"], 1)
            self.assertEqual(t["lastResult"], 0)
            self.assertIsInstance(t["lastDurationMs"], int)
            self.assertEqual(admin(srv, "cron.run", {"id": "nope"}).status, 404)

    def test_job_fails_then_succeeds_after_retry(self):
        with Server("--admin-token", TOKEN) as srv:
            jid = srv.call("conf.job", {"name": "failOnce", "data": {"key": "k1"},
                                        "maxAttempts": 1}).json["id"]
            job = wait_job(srv, jid, "failed")
            self.assertIn("first run", job["error"])
            fails = admin(srv, "overview").json["jobs"]["failures"]
            self.assertEqual([f["id"] for f in fails], [jid])
            self.assertEqual(admin(srv, "jobs.list", {"status": "failed"}).json["jobs"][0]["id"], jid)
            self.assertEqual(admin(srv, "jobs.retry", {"id": jid}).status, 200)
            job = wait_job(srv, jid, "completed")
            self.assertEqual(job["result"], {"ok": "k1"})
            hist = admin(srv, "jobs.get", {"id": jid}).json["history"]
            self.assertEqual([h["event"] for h in hist], ["failed", "completed"], hist)
            self.assertIn("first run", hist[0]["error"])
            self.assertEqual(job["attempts"], 1)
            # A completed job cannot be retried; it can be deleted.
            self.assertEqual(admin(srv, "jobs.retry", {"id": jid}).status, 409)
            self.assertEqual(admin(srv, "jobs.cancel", {"id": jid}).status, 409)
            self.assertEqual(admin(srv, "jobs.delete", {"id": jid}).status, 200)
            self.assertEqual(admin(srv, "jobs.get", {"id": jid}).status, 404)
            self.assertEqual(admin(srv, "jobs.retry", {"id": 999999}).status, 404)

    def test_live_stream_sends_snapshots(self):
        with Server("--admin-token", TOKEN) as srv:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(("GET /admin.live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                       % TOKEN).encode())
            buf = b""
            deadline = time.time() + 10
            while b"event: snapshot" not in buf or not buf.rstrip().endswith(b"}"):
                if time.time() > deadline:
                    break
                buf += s.recv(65536)
            s.close()
            self.assertIn(b"200 OK", buf.split(b"\r\n")[0])
            self.assertIn(b"text/event-stream", buf)
            self.assertIn(b"event: snapshot", buf)

    def test_routes_in_manifest_and_openapi(self):
        env = dict(os.environ, DONKEY_ADMIN_TOKEN=TOKEN)
        out = subprocess.run([CONFORMANCE, "--routes-json"], stdout=subprocess.PIPE, timeout=30,
                             env=env).stdout
        names = {r["name"] for r in json.loads(out)["routes"]}
        for n in ("admin.overview", "admin.jobs.retry", "admin.cron.run", "admin.live"):
            self.assertIn(n, names)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "openapi.json")
            r = subprocess.run([os.path.join(BUILD, "cli", "donkey"), "generate", "openapi",
                                "--server", CONFORMANCE, "--out", path], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(path) as f:
                doc = json.load(f)
            self.assertIn("/admin.jobs.retry", doc["paths"])
            self.assertIn("/admin.overview", doc["paths"])


if __name__ == "__main__":
    unittest.main()
