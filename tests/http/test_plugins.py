"""Plugins: auth middleware, notes with migrations and persistence, a custom
handler kind, middleware chain semantics, cors, requestLog, and start-up
refusal on broken plugin sets, through real sockets against conformance."""
import os
import subprocess
import tempfile
import time
import unittest

from dk import CONFORMANCE, Server

AUTH = {"Authorization": "Bearer letmein"}


class Plugins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    # --- confauth / conf.whoami ---
    def test_whoami_without_token_is_401(self):
        r = self.srv.call("conf.whoami", {})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["error"], "UNAUTHORIZED")
        self.assertIsInstance(r.json["message"], str)
        self.assertNotIn("x-auth", r.headers)

    def test_whoami_wrong_token_is_401(self):
        r = self.srv.call("conf.whoami", {}, headers={"Authorization": "Bearer nope"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["error"], "UNAUTHORIZED")

    def test_whoami_with_token(self):
        r = self.srv.call("conf.whoami", {}, headers=AUTH)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"user": "tester"})
        self.assertEqual(r.headers["x-auth"], "ok")

    def test_auth_is_not_sticky_on_other_routes(self):
        r = self.srv.call("conf.echo", {"name": "x"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("x-auth", r.headers)
        self.assertEqual(self.srv.call("conf.notes.list", {}).status, 200)

    # --- notes ---
    def test_notes_add_and_list_in_order(self):
        a = self.srv.call("conf.notes.add", {"text": "first"})
        b = self.srv.call("conf.notes.add", {"text": "second"})
        self.assertEqual(a.status, 200)
        self.assertEqual(b.status, 200)
        self.assertIsInstance(a.json["id"], int)
        self.assertEqual(a.json["text"], "first")
        self.assertGreater(b.json["id"], a.json["id"])
        notes = self.srv.call("conf.notes.list", {}).json["notes"]
        ids = [n["id"] for n in notes]
        self.assertEqual(ids, sorted(ids))
        self.assertIn({"id": a.json["id"], "text": "first"}, notes)
        self.assertIn({"id": b.json["id"], "text": "second"}, notes)
        self.assertLess(ids.index(a.json["id"]), ids.index(b.json["id"]))

    def test_notes_validation(self):
        for body in ({}, {"text": ""}, {"text": "x" * 501}, {"text": 5}, {"text": "ok", "x": 1}):
            r = self.srv.call("conf.notes.add", body)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.json["error"], "BAD_REQUEST")
        self.assertEqual(self.srv.call("conf.notes.add", {"text": "y" * 500}).status, 200)

    def test_plugin_custom_error(self):
        r = self.srv.call("conf.notes.get", {"id": 987654})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json, {"error": "NOTE_NOT_FOUND", "message": "Note not found"})

    # --- custom handler kind ---
    def test_custom_kind_echo(self):
        body = {"a": [1, 2, {"b": None}], "s": "é"}
        r = self.srv.call("conf.kind", body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"echo": body})

    def test_custom_kind_non_object_and_bad_json(self):
        self.assertEqual(self.srv.call("conf.kind", [1, 2]).json, {"echo": [1, 2]})
        r = self.srv.request("POST", "/conf.kind", body=b"{nope")
        self.assertEqual(r.status, 400)

    def test_routes_json_lists_kind_and_events(self):
        out = subprocess.run([CONFORMANCE, "--routes-json"], capture_output=True, text=True,
                             timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        import json
        doc = json.loads(out.stdout)
        kinds = {r["name"]: r["handler"] for r in doc["routes"]}
        self.assertEqual(kinds["conf.kind"], "echoKind")
        self.assertIn("notes.created", doc["events"])

    # --- middleware chain ---
    def test_middleware_order_and_context_values(self):
        r = self.srv.call("conf.mw.trace", {})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"trace": ["a", "b", "c"]})  # outermost first
        self.assertEqual(r.headers["x-trace-after"], "c,b,a")  # after-phase: inner first

    def test_middleware_early_return(self):
        r = self.srv.call("conf.mw.stop.run", {})
        self.assertEqual(r.status, 200)
        # "never" and the handler did not run; outer middleware still saw the response.
        self.assertEqual(r.json, {"stoppedBy": "b2", "trace": ["a", "b", "b2"]})
        self.assertEqual(r.headers["x-trace-after"], "b,a")

    def test_middleware_error_and_response_change(self):
        r = self.srv.call("conf.mw.deny.run", {})
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json, {"error": "FORBIDDEN", "message": "denied by b2"})
        self.assertEqual(r.headers["x-trace-after"], "b,a")

    def test_middleware_added_later_does_not_touch_earlier_routes(self):
        # conf.mw.stop.* was created before "c" was attached to its parent.
        r = self.srv.call("conf.mw.stop.run", {})
        self.assertNotIn("c", r.json["trace"])

    def test_request_log_entry(self):
        r = self.srv.call("conf.mw.trace", {})
        rid = r.headers["x-request-id"]
        deadline = time.time() + 5
        while time.time() < deadline:
            lines = [l for l in self.srv.output().splitlines() if rid in l]
            if any("Request completed" in l for l in lines):
                break
            time.sleep(0.05)
        line = next(l for l in lines if "Request completed" in l)
        self.assertIn("INFO", line)
        self.assertIn("conf.mw.trace", line)
        self.assertIn('"status":200', line)
        self.assertIn("durationMs", line)
        self.assertIn('"method":"POST"', line)

    # --- cors ---
    def test_cors_preflight(self):
        r = self.srv.request("OPTIONS", "/conf.cors.ping", headers={
            "Origin": "http://a.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["access-control-allow-origin"], "http://a.example")
        self.assertIn("POST", r.headers["access-control-allow-methods"])
        self.assertIn("Content-Type", r.headers["access-control-allow-headers"])
        self.assertTrue(r.headers["access-control-max-age"].isdigit())
        self.assertEqual(r.headers["access-control-allow-credentials"], "true")
        self.assertIn("Origin", r.headers["vary"])

    def test_cors_preflight_foreign_origin(self):
        r = self.srv.request("OPTIONS", "/conf.cors.ping", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 403)
        self.assertNotIn("access-control-allow-origin", r.headers)

    def test_cors_simple_request(self):
        r = self.srv.call("conf.cors.ping", {}, headers={"Origin": "http://a.example"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["access-control-allow-origin"], "http://a.example")
        self.assertIn("Origin", r.headers["vary"])
        r = self.srv.call("conf.cors.ping", {}, headers={"Origin": "http://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertIn("Origin", r.headers["vary"])


class Persistence(unittest.TestCase):
    def test_notes_survive_restart_and_migration_runs_once(self):
        d = tempfile.mkdtemp(prefix="dk-plugins-")
        db = os.path.join(d, "notes.db")
        try:
            with Server("--db", "sqlite:" + db) as s:
                self.assertEqual(s.call("conf.notes.add", {"text": "kept"}).status, 200)
                out1 = s.output()
            self.assertIn("create_notes", out1)
            with Server("--db", "sqlite:" + db) as s:
                notes = s.call("conf.notes.list", {}).json["notes"]
                self.assertEqual([n["text"] for n in notes], ["kept"])
                self.assertEqual(s.call("conf.notes.add", {"text": "more"}).status, 200)
                out2 = s.output()
            # The tracked migration is not applied a second time.
            self.assertNotIn("create_notes", out2)
            with Server("--db", "sqlite:" + db) as s:
                notes = s.call("conf.notes.list", {}).json["notes"]
                self.assertEqual([n["text"] for n in notes], ["kept", "more"])
        finally:
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            os.rmdir(d)


class Broken(unittest.TestCase):
    def run_broken(self, mode):
        out = subprocess.run([CONFORMANCE, "--port", "0", "--broken-plugins", mode],
                             capture_output=True, text=True, timeout=20,
                             env=dict(os.environ, NO_COLOR="1"))
        return out.returncode, out.stdout + out.stderr

    def test_missing_dependency(self):
        rc, text = self.run_broken("missing")
        self.assertNotEqual(rc, 0)
        self.assertIn("orphan", text)
        self.assertIn("ghost", text)

    def test_self_dependency(self):
        rc, text = self.run_broken("self")
        self.assertNotEqual(rc, 0)
        self.assertIn("narcissus", text)

    def test_cycle(self):
        rc, text = self.run_broken("cycle")
        self.assertNotEqual(rc, 0)
        self.assertIn("alpha -> beta -> gamma -> alpha", text)

    def test_unknown_mode_refuses_too(self):
        rc, text = self.run_broken("bogus")
        self.assertNotEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
