"""The board example (examples/board) through real sockets: sign-up, log-in
and the session cookie, 401 without a session, wrong passwords, the log-in
rate limit, boards and tasks, live events over SSE, the export job and its
download, session expiry and the purge cron task."""
import json
import os
import socket
import sqlite3
import tempfile
import time
import unittest
import uuid

from dk import BUILD, Server

BOARD = os.path.join(BUILD, "examples", "board", "board")
PASSWORD = "correct horse"


def board_server(tmp, *extra):
    return Server("--db", "sqlite:" + os.path.join(tmp, "board.db"), "--data-dir", tmp,
                  "--log-level", "warn", *extra, binary=BOARD)


def uname(prefix="u"):
    return prefix + uuid.uuid4().hex[:10]


def session_cookie(resp):
    """The board_session value from Set-Cookie, and the whole header."""
    for k, v in resp.header_list:
        if k.lower() == "set-cookie" and v.startswith("board_session="):
            return v.split(";", 1)[0].split("=", 1)[1], v
    return None, None


class EventStream:
    """GET an event stream over a raw socket, decode the chunked body and
    collect events; every wait is bounded."""

    def __init__(self, port, path, cookie):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                           "Cookie: board_session=%s\r\n\r\n" % (path, cookie)).encode())
        self.raw = b""
        self.body = b""
        self.status = None
        self.headers = {}
        self.events = []
        self._read_head()

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            raise AssertionError("stream closed; body so far: %r" % self.body)
        self.raw += data

    def _read_head(self):
        deadline = time.time() + 5
        while b"\r\n\r\n" not in self.raw:
            if time.time() > deadline:
                raise AssertionError("no response head: %r" % self.raw)
            self._recv(deadline - time.time())
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def _dechunk(self):
        while True:
            size_line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            n = int(size_line.split(b";")[0], 16)
            if len(rest) < n + 2:
                return
            self.body += rest[:n]
            self.raw = rest[n + 2:]

    def _parse(self):
        while b"\n\n" in self.body:
            block, _, self.body = self.body.partition(b"\n\n")
            ev = {"event": "message", "data": [], "id": None}
            for line in block.decode().split("\n"):
                if not line or line.startswith(":"):
                    continue
                field, _, value = line.partition(": ")
                if field == "data":
                    ev["data"].append(value)
                elif field in ("event", "id"):
                    ev[field] = value
            if ev["data"]:
                ev["data"] = json.loads("\n".join(ev["data"]))
                self.events.append(ev)

    def wait_for(self, name, timeout=10, where=lambda d: True):
        deadline = time.time() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and where(ev["data"]):
                    del self.events[: i + 1]
                    return ev["data"]
            if time.time() > deadline:
                raise AssertionError("no %s event within %ss; got %r" % (name, timeout, self.events))
            self._recv(deadline - time.time())
            self._dechunk()
            self._parse()

    def close(self):
        self.sock.close()


class BoardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BOARD):
            raise unittest.SkipTest("board example not built: " + BOARD)
        cls.tmp = tempfile.TemporaryDirectory(prefix="dk-board-")
        cls.srv = board_server(cls.tmp.name, "--login-limit", "1000")

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)
        cls.tmp.cleanup()

    def call(self, route, body=None, cookie=None):
        headers = {"Cookie": "board_session=" + cookie} if cookie else None
        return self.srv.call(route, body or {}, headers=headers)

    def signup(self, name=None):
        name = name or uname()
        r = self.call("auth.signup", {"username": name, "password": PASSWORD})
        self.assertEqual(r.status, 200, r)
        cookie, _ = session_cookie(r)
        self.assertIsNotNone(cookie, r.header_list)
        return name, cookie

    # ---- auth ----

    def test_signup_sets_http_only_cookie(self):
        name = uname()
        r = self.call("auth.signup", {"username": name, "password": PASSWORD})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["user"]["username"], name)
        cookie, header = session_cookie(r)
        self.assertRegex(cookie, r"^[0-9a-f]{64}$")
        for attr in ("HttpOnly", "SameSite=Lax", "Path=/"):
            self.assertIn(attr, header)
        me = self.call("auth.me", cookie=cookie)
        self.assertEqual(me.status, 200, me)
        self.assertEqual(me.json["user"]["username"], name)

    def test_without_session_is_401(self):
        for route in ("auth.me", "boards.list", "tasks.add", "auth.logout"):
            r = self.call(route)
            self.assertEqual(r.status, 401, (route, r))
            self.assertEqual(r.json["error"], "UNAUTHORIZED")
        self.assertEqual(self.call("boards.list", cookie="0" * 64).status, 401)
        self.assertEqual(self.srv.request("GET", "/boards.live").status, 401)
        self.assertEqual(self.srv.request("GET", "/boards.download?job=1").status, 401)

    def test_login_wrong_password_and_logout(self):
        name, _ = self.signup()
        r = self.call("auth.login", {"username": name, "password": "wrong password"})
        self.assertEqual(r.status, 401, r)
        self.assertIsNone(session_cookie(r)[0])
        r = self.call("auth.login", {"username": "nobody" + uname(), "password": PASSWORD})
        self.assertEqual(r.status, 401, r)
        r = self.call("auth.login", {"username": name, "password": PASSWORD})
        self.assertEqual(r.status, 200, r)
        cookie, _ = session_cookie(r)
        self.assertEqual(self.call("auth.me", cookie=cookie).status, 200)
        out = self.call("auth.logout", cookie=cookie)
        self.assertEqual(out.status, 200, out)
        cleared, header = session_cookie(out)
        self.assertEqual(cleared, "")
        self.assertIn("Max-Age=0", header)
        self.assertEqual(self.call("auth.me", cookie=cookie).status, 401)

    def test_signup_validation_and_duplicates(self):
        name, _ = self.signup()
        r = self.call("auth.signup", {"username": name, "password": PASSWORD})
        self.assertEqual(r.status, 409, r)
        r = self.call("auth.signup", {"username": uname(), "password": "short"})
        self.assertEqual(r.status, 400, r)
        r = self.call("auth.signup", {"username": "bad name!", "password": PASSWORD})
        self.assertEqual(r.status, 400, r)

    # ---- boards and tasks ----

    def test_board_and_task_crud(self):
        _, ann = self.signup()
        _, bob = self.signup()
        b = self.call("boards.create", {"name": "Groceries"}, cookie=ann)
        self.assertEqual(b.status, 200, b)
        board = b.json
        self.assertEqual(board["name"], "Groceries")
        self.assertEqual(board["taskCount"], 0)
        # Every signed-in user sees every board.
        listed = self.call("boards.list", cookie=bob).json["boards"]
        self.assertIn(board["id"], [x["id"] for x in listed])

        t = self.call("tasks.add", {"boardId": board["id"], "title": "Milk"}, cookie=bob)
        self.assertEqual(t.status, 200, t)
        task = t.json
        self.assertEqual(task["column"], "todo")
        m = self.call("tasks.move", {"id": task["id"], "column": "doing"}, cookie=ann)
        self.assertEqual(m.status, 200, m)
        self.assertEqual(m.json["column"], "doing")
        bad = self.call("tasks.move", {"id": task["id"], "column": "later"}, cookie=ann)
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(self.call("tasks.move", {"id": 999999, "column": "done"}, cookie=ann).status,
                         404)
        self.assertEqual(self.call("tasks.add", {"boardId": 999999, "title": "x"}, cookie=ann).status,
                         404)

        g = self.call("boards.get", {"id": board["id"]}, cookie=bob)
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json["board"]["taskCount"], 1)
        self.assertEqual([(x["title"], x["column"]) for x in g.json["tasks"]], [("Milk", "doing")])

        d = self.call("tasks.delete", {"id": task["id"]}, cookie=bob)
        self.assertEqual(d.status, 200, d)
        self.assertEqual(self.call("boards.get", {"id": board["id"]}, cookie=bob).json["tasks"], [])
        self.assertEqual(self.call("tasks.delete", {"id": task["id"]}, cookie=bob).status, 404)
        self.assertEqual(self.call("boards.get", {"id": 999999}, cookie=bob).status, 404)

    def test_sse_event_on_task_add_and_move(self):
        _, ann = self.signup()
        bob_name, bob = self.signup()
        board = self.call("boards.create", {"name": "Live"}, cookie=ann).json
        s = EventStream(self.srv.port, "/boards.live?board=%d" % board["id"], ann)
        try:
            self.assertEqual(s.status, 200)
            self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
            task = self.call("tasks.add", {"boardId": board["id"], "title": "Live one"},
                             cookie=bob).json
            ev = s.wait_for("task.added")
            self.assertEqual(ev["task"], task)
            self.assertEqual(ev["by"]["username"], bob_name)
            self.call("tasks.move", {"id": task["id"], "column": "done"}, cookie=bob)
            ev = s.wait_for("task.moved")
            self.assertEqual(ev["task"]["column"], "done")
            self.call("tasks.delete", {"id": task["id"]}, cookie=bob)
            self.assertEqual(s.wait_for("task.deleted")["id"], task["id"])
        finally:
            s.close()
        self.assertEqual(self.srv.request("GET", "/boards.live?board=999999",
                                          headers={"Cookie": "board_session=" + ann}).status, 404)

    def test_export_job_progress_and_download(self):
        _, ann = self.signup()
        board = self.call("boards.create", {"name": "Export me"}, cookie=ann).json
        for title in ("one", "two", "three"):
            self.call("tasks.add", {"boardId": board["id"], "title": title}, cookie=ann)
        s = EventStream(self.srv.port, "/boards.live?board=%d" % board["id"], ann)
        try:
            r = self.call("boards.export", {"id": board["id"]}, cookie=ann)
            self.assertEqual(r.status, 200, r)
            job = r.json["jobId"]
            mine = lambda d: d["jobId"] == job
            self.assertEqual(s.wait_for("export.progress", where=mine)["percent"], 0)
            done = s.wait_for("export.done", timeout=20, where=mine)
        finally:
            s.close()
        self.assertEqual(done["url"], "/boards.download?job=%d" % job)
        self.assertTrue(os.path.exists(os.path.join(self.tmp.name, "exports", done["file"])))
        # export.done follows the job's committed completion: the download
        # works at once (no 409 window).
        dl = self.srv.request("GET", done["url"], headers={"Cookie": "board_session=" + ann})
        self.assertEqual(dl.status, 200, dl)
        self.assertIn("attachment", dl.headers["content-disposition"])
        doc = json.loads(dl.body)
        self.assertEqual(doc["board"]["name"], "Export me")
        self.assertEqual([t["title"] for t in doc["tasks"]], ["one", "two", "three"])
        missing = self.srv.request("GET", "/boards.download?job=999999",
                                   headers={"Cookie": "board_session=" + ann})
        self.assertEqual(missing.status, 404)

    def test_page_is_served(self):
        for path in ("/app", "/index.html"):
            r = self.srv.request("GET", path)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers["content-type"].startswith("text/html"))
            self.assertIn(b"/app.js", r.body)
        js = self.srv.request("GET", "/app.js")
        self.assertEqual(js.status, 200)
        self.assertTrue(js.headers["content-type"].startswith("text/javascript"))
        self.assertEqual(self.srv.request("GET", "/app.css").status, 200)
        # The generated TypeScript client's JavaScript, embedded at build time.
        client = self.srv.request("GET", "/client.js")
        self.assertEqual(client.status, 200)
        self.assertIn(b"createApiClient", client.body)
        self.assertIn(b"boards.live", client.body)
        self.assertEqual(self.srv.request("GET", "/runtime.js").status, 200)


class BoardLimitsTest(unittest.TestCase):
    """Settings that need their own server: a low log-in limit, short sessions."""

    def setUp(self):
        if not os.path.exists(BOARD):
            self.skipTest("board example not built: " + BOARD)
        self.tmp = tempfile.TemporaryDirectory(prefix="dk-board-")

    def tearDown(self):
        self.tmp.cleanup()

    def test_login_rate_limit(self):
        with board_server(self.tmp.name, "--login-limit", "3") as srv:
            name = uname()
            self.assertEqual(srv.call("auth.signup", {"username": name, "password": PASSWORD}).status,
                             200)
            for _ in range(3):
                r = srv.call("auth.login", {"username": name, "password": "wrong password"})
                self.assertEqual(r.status, 401, r)
            r = srv.call("auth.login", {"username": name, "password": "wrong password"})
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json["error"], "TOO_MANY_REQUESTS")
            self.assertIn("retry-after", r.headers)
            # Even the right password waits now.
            r = srv.call("auth.login", {"username": name, "password": PASSWORD})
            self.assertEqual(r.status, 429, r)
            # Sign-up is not limited.
            self.assertEqual(srv.call("auth.signup", {"username": uname(), "password": PASSWORD})
                             .status, 200)

    def test_session_expiry_and_purge(self):
        db = os.path.join(self.tmp.name, "board.db")
        with board_server(self.tmp.name, "--session-ttl", "1", "--purge-cron",
                          "* * * * * *") as srv:
            r = srv.call("auth.signup", {"username": uname(), "password": PASSWORD})
            cookie, header = session_cookie(r)
            self.assertIn("Max-Age=1", header)
            hdr = {"Cookie": "board_session=" + cookie}
            self.assertEqual(srv.call("auth.me", headers=hdr).status, 200)
            time.sleep(1.3)
            self.assertEqual(srv.call("auth.me", headers=hdr).status, 401)
            deadline = time.time() + 5
            left = None
            while time.time() < deadline:
                with sqlite3.connect(db, timeout=5) as c:
                    left = c.execute("SELECT COUNT(*) FROM board_sessions").fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.2)
            self.assertEqual(left, 0, "the cron task did not purge the expired session")


if __name__ == "__main__":
    unittest.main()
