"""SSE: wire format, channels, broadcast counts, field injection, replay with
Last-Event-ID, disconnect clean-up, slow readers, heartbeat, limits and
shutdown, through real sockets against the conformance app (conf.sse,
conf.broadcast)."""
import json
import re
import signal
import socket
import threading
import time
import unittest
import uuid

from dk import Server

ID_RE = re.compile(r"^sse_\d+_\d+$")


def chan():
    return "c-" + uuid.uuid4().hex[:12]


class SSEClient:
    """A raw-socket event-stream client: sends the request, decodes the
    chunked body incrementally and waits for bytes with bounded timeouts."""

    def __init__(self, port, channels=(), method="GET", last_event_id=None, rcvbuf=None,
                 read_headers=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        qs = "&".join("channel=" + c for c in channels)
        path = "/conf.sse" + ("?" + qs if qs else "")
        head = "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n" % (method, path)
        if last_event_id is not None:
            head += "Last-Event-ID: %s\r\n" % last_event_id
        body = b""
        if method == "POST":
            body = b"{}"
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.sock.sendall(head.encode() + b"\r\n" + body)
        self.raw = b""
        self.body = b""
        self.ended = False  # chunked terminator seen
        self.broken = False  # unparsable chunk framing
        self.eof = False
        self.status = None
        self.headers = {}
        if read_headers:
            self.read_headers()

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.raw += data
        return True

    def read_headers(self, timeout=5):
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.raw:
            if time.time() > deadline or self.eof:
                raise AssertionError("no response head: %r" % self.raw)
            self._recv(deadline - time.time())
        head, _, rest = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.raw = rest
        self._decode()

    def _decode(self):
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            self.body += self.raw
            self.raw = b""
            return
        # Each chunk's data is taken as soon as it is complete; the CRLF that
        # closes it may only arrive with the next chunk.
        while True:
            if self.raw.startswith(b"\r\n"):
                self.raw = self.raw[2:]
            line, sep, rest = self.raw.partition(b"\r\n")
            if not sep:
                return
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                self.broken = True
                self.eof = True
                return
            if size == 0:
                self.ended = True
                self.raw = rest
                return
            if len(rest) < size:
                return
            self.body += rest[:size]
            self.raw = rest[size:]

    def wait_for(self, pred, timeout=5):
        """Reads until pred(body) is true; returns whether it became true."""
        deadline = time.time() + timeout
        while not pred(self.body):
            if self.eof or self.ended or time.time() > deadline:
                return pred(self.body)
            if self._recv(deadline - time.time()):
                self._decode()
        return True

    def wait_bytes(self, n, timeout=5):
        return self.wait_for(lambda b: len(b) >= n, timeout)

    def read_to_end(self, timeout=5):
        deadline = time.time() + timeout
        while not (self.eof or self.ended) and time.time() < deadline:
            if self._recv(deadline - time.time()):
                self._decode()
        return self.eof or self.ended

    def frames(self, comments=False):
        """Complete frames (without the blank line), heartbeat comments dropped."""
        parts = self.body.split(b"\n\n")[:-1]
        return [p + b"\n\n" for p in parts if comments or not p.startswith(b":")]

    def events(self):
        out = []
        for f in self.frames():
            ev = {"data": []}
            for line in f.decode().split("\n"):
                if not line:
                    continue
                k, _, v = line.partition(": ")
                if k == "data":
                    ev["data"].append(v)
                else:
                    ev[k] = v
            if "event" in ev:
                out.append(ev)
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def broadcast(srv, channel, event, data, id=None):
    body = {"channel": channel, "event": event, "data": data}
    if id is not None:
        body["id"] = id
    return srv.call("conf.broadcast", body)


class SSE(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def client(self, *channels, **kw):
        c = SSEClient(self.srv.port, channels, **kw)
        self.addCleanup(c.close)
        return c

    def send(self, channel, event, data, id=None, expect=None):
        r = broadcast(self.srv, channel, event, data, id)
        self.assertEqual(r.status, 200, r)
        if expect is not None:
            self.assertEqual(r.json, {"clients": expect})
        return r

    # --- headers and framing ---
    def test_headers_and_retry_first(self):
        c = self.client(chan())
        self.assertEqual(c.status, 200)
        self.assertEqual(c.headers["content-type"], "text/event-stream")
        self.assertEqual(c.headers["cache-control"], "no-cache")
        self.assertEqual(c.headers["x-accel-buffering"], "no")
        self.assertEqual(c.headers["connection"].lower(), "keep-alive")
        self.assertTrue(ID_RE.match(c.headers["x-sse-client-id"]), c.headers)
        self.assertTrue(c.wait_bytes(len(b"retry: 3000\n\n")))
        self.assertEqual(c.body, b"retry: 3000\n\n")

    def test_client_ids_differ(self):
        a, b = self.client(chan()), self.client(chan())
        self.assertNotEqual(a.headers["x-sse-client-id"], b.headers["x-sse-client-id"])

    def test_frames_byte_for_byte(self):
        ch = chan()
        c = self.client(ch)
        self.assertTrue(c.wait_bytes(13))
        self.send(ch, "notification", {"message": "Hello"}, "msg-123", expect=1)
        self.send(ch, "note", "x\r\ny\rz\nw", "e-1", expect=1)
        self.send(ch, "s", "123", "e-2", expect=1)
        self.send(ch, "n", None, "e-3", expect=1)
        self.send(ch, "empty", "", "e-4", expect=1)
        self.send(ch, "tail", "a\n", "e-5", expect=1)
        self.send(ch, "arr", [1, "two", {"k": None}], "e-6", expect=1)
        expected = (b"retry: 3000\n\n"
                    b"id: msg-123\nevent: notification\ndata: {\"message\":\"Hello\"}\n\n"
                    b"id: e-1\nevent: note\ndata: x\ndata: y\ndata: z\ndata: w\n\n"
                    b"id: e-2\nevent: s\ndata: 123\n\n"
                    b"id: e-3\nevent: n\ndata: null\n\n"
                    b"id: e-4\nevent: empty\ndata: \n\n"
                    b"id: e-5\nevent: tail\ndata: a\ndata: \n\n"
                    b"id: e-6\nevent: arr\ndata: [1,\"two\",{\"k\":null}]\n\n")
        self.assertTrue(c.wait_bytes(len(expected)), c.body)
        self.assertEqual(c.body, expected)

    def test_generated_ids_increase(self):
        ch = chan()
        c = self.client(ch)
        for i in range(3):
            self.send(ch, "tick", i, expect=1)
        self.assertTrue(c.wait_for(lambda b: b.count(b"event: tick") == 3))
        ids = [int(e["id"]) for e in c.events()]
        self.assertEqual(len(ids), 3)
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 3)
        self.assertTrue(c.frames()[1].startswith(b"id: %d\nevent: tick\ndata: 0\n\n" % ids[0]))

    def test_unicode_payload(self):
        ch = chan()
        c = self.client(ch)
        self.send(ch, "u", "héllo ✓", "u1", expect=1)
        want = "id: u1\nevent: u\ndata: héllo ✓\n\n".encode()
        self.assertTrue(c.wait_for(lambda b: want in b))

    # --- channels ---
    def test_channels_isolated_and_repeatable_param(self):
        a_ch, b_ch = chan(), chan()
        a = self.client(a_ch)
        b = self.client(b_ch)
        both = self.client(a_ch, b_ch)
        self.send(a_ch, "only-a", 1, "ia", expect=2)
        self.send(b_ch, "only-b", 2, "ib", expect=2)
        self.assertTrue(a.wait_for(lambda x: b"only-a" in x))
        self.assertTrue(b.wait_for(lambda x: b"only-b" in x))
        self.assertTrue(both.wait_for(lambda x: b"only-a" in x and b"only-b" in x))
        self.assertNotIn(b"only-b", a.body)
        self.assertNotIn(b"only-a", b.body)
        self.assertEqual([e["event"] for e in both.events()], ["only-a", "only-b"])

    def test_broadcast_without_clients_counts_zero(self):
        self.send(chan(), "nobody", 1, expect=0)

    def test_post_stream(self):
        ch = chan()
        c = self.client(ch, method="POST")
        self.assertEqual(c.status, 200)
        self.assertEqual(c.headers["content-type"], "text/event-stream")
        self.send(ch, "p", "post", "p1", expect=1)
        self.assertTrue(c.wait_for(lambda b: b"id: p1\nevent: p\ndata: post\n\n" in b))

    # --- injection ---
    def test_cr_lf_in_event_or_id_rejected(self):
        ch = chan()
        c = self.client(ch)
        for event, id in (("a\nb", None), ("a\rb", None), ("ok", "x\ny"), ("ok", "x\rid: 9"),
                          ("ok\r\nevent: evil", "1")):
            r = broadcast(self.srv, ch, event, "d", id)
            self.assertEqual(r.status, 400, (event, id, r))
            self.assertEqual(r.json["error"], "BAD_REQUEST")
        self.send(ch, "after", "fine", "z", expect=1)
        self.assertTrue(c.wait_for(lambda b: b"event: after" in b))
        self.assertEqual(c.body, b"retry: 3000\n\nid: z\nevent: after\ndata: fine\n\n")

    # --- replay ---
    def test_replay_after_reconnect(self):
        ch, other = chan(), chan()
        c1 = self.client(ch)
        self.send(ch, "e", "one", expect=1)
        self.send(ch, "e", "two", expect=1)
        self.assertTrue(c1.wait_for(lambda b: b.count(b"event: e") == 2))
        last = c1.events()[-1]["id"]
        c1.close()
        self.send(ch, "e", "three")
        self.send(other, "e", "elsewhere")
        self.send(ch, "e", "four")
        c2 = self.client(ch, last_event_id=last)
        self.assertTrue(c2.wait_for(lambda b: b.count(b"event: e") == 2))
        self.send(ch, "e", "five", expect=1)
        self.assertTrue(c2.wait_for(lambda b: b.count(b"event: e") == 3))
        self.assertTrue(c2.body.startswith(b"retry: 3000\n\n"))
        self.assertEqual([e["data"] for e in c2.events()], [["three"], ["four"], ["five"]])
        ids = [int(e["id"]) for e in c2.events()]
        self.assertEqual(ids, sorted(ids))
        self.assertGreater(ids[0], int(last))

    def test_replay_with_caller_ids_and_two_channels(self):
        a_ch, b_ch = chan(), chan()
        self.client(a_ch, b_ch)  # someone listens: the channels keep windows
        self.send(a_ch, "x", 1, "k-1")
        self.send(b_ch, "x", 2, "k-2")
        self.send(a_ch, "x", 3, "k-3")
        self.send(b_ch, "x", 4, "k-4")
        c = self.client(a_ch, b_ch, last_event_id="k-2")
        self.assertTrue(c.wait_for(lambda b: b.count(b"event: x") == 2))
        time.sleep(0.2)
        self.assertEqual([e["id"] for e in c.events()], ["k-3", "k-4"])

    def test_replay_nothing_missed(self):
        ch = chan()
        self.client(ch)
        self.send(ch, "x", 1, "only")
        c = self.client(ch, last_event_id="only")
        self.send(ch, "x", 2, "next", expect=2)
        self.assertTrue(c.wait_for(lambda b: b"next" in b))
        self.assertEqual([e["id"] for e in c.events()], ["next"])

    def test_channel_without_subscribers_keeps_no_window(self):
        """Issue 14, item 13: broadcasts to a channel nobody listens to are not
        kept (arbitrary channel names cost no memory); a client resuming
        across them is told to reload (reset) rather than silently missing them."""
        ch = chan()
        self.assertEqual(self.send(ch, "x", 1, "n-1").json, {"clients": 0})
        self.send(ch, "x", 2, "n-2")
        c = self.client(ch, last_event_id="n-1")
        self.assertTrue(c.wait_for(lambda b: b"event: reset" in b))
        self.assertNotIn(b"n-2", c.body)

    def test_replay_unknown_id_sends_reset(self):
        ch = chan()
        self.send(ch, "x", 1, "known")
        c = self.client(ch, last_event_id="never-sent-" + uuid.uuid4().hex)
        self.assertTrue(c.wait_for(lambda b: b"event: reset" in b))
        self.assertEqual(c.events()[0]["event"], "reset")
        self.assertNotIn(b"known", c.body)

    # --- disconnect ---
    def test_cleanup_after_disconnect(self):
        ch = chan()
        c = self.client(ch)
        self.assertTrue(c.wait_bytes(13))
        self.send(ch, "x", 1, expect=1)
        c.close()
        deadline = time.time() + 3
        n = None
        while time.time() < deadline:
            n = broadcast(self.srv, ch, "x", 2).json["clients"]
            if n == 0:
                break
            time.sleep(0.05)
        self.assertEqual(n, 0)


class SSEServers(unittest.TestCase):
    """Tests needing their own server (options from the environment)."""

    def test_ids_from_an_earlier_run_get_reset(self):
        """Issue 16, item 5: generated ids are unique across restarts. A client
        that last saw id 4 of the previous run and reconnects to a restarted
        server (which has sent 6 events since) gets a reset, not a replay that
        would silently skip the new run's first events."""
        ch = chan()
        with Server() as first:
            c = SSEClient(first.port, [ch])
            for i in range(4):
                self.assertEqual(broadcast(first, ch, "e", i).status, 200)
            self.assertTrue(c.wait_for(lambda b: b.count(b"event: e\n") == 4))
            old = [e["id"] for e in c.events()]
            c.close()
        with Server() as second:
            live = SSEClient(second.port, [ch])  # keeps the channel's window
            for i in range(6):
                self.assertEqual(broadcast(second, ch, "e", 10 + i).status, 200)
            self.assertTrue(live.wait_for(lambda b: b.count(b"event: e\n") == 6))
            new = [e["id"] for e in live.events()]
            live.close()
            self.assertFalse(set(old) & set(new), (old, new))
            # Still numeric and increasing across the restart.
            ids = [int(i) for i in old + new]
            self.assertEqual(ids, sorted(ids))
            stale = SSEClient(second.port, [ch], last_event_id=old[-1])
            self.assertTrue(stale.wait_for(lambda b: b"event: reset" in b), stale.body)
            self.assertEqual([e["event"] for e in stale.events()], ["reset"])
            stale.close()
            # An id of this run still replays what came after it.
            fresh = SSEClient(second.port, [ch], last_event_id=new[2])
            self.assertTrue(fresh.wait_for(lambda b: b.count(b"event: e\n") == 3), fresh.body)
            self.assertEqual([e["id"] for e in fresh.events()], new[3:])
            fresh.close()

    def test_streams_hold_and_release_connection_slots(self):
        # After its head, an HTTP/1.1 stream lives on a socket of its own (the
        # request's memory is released): it must still count as a connection
        # and give its slot back when the client leaves.
        with Server("--max-connections", "3") as srv:
            ch = chan()
            a, b = SSEClient(srv.port, [ch]), SSEClient(srv.port, [ch])
            self.assertTrue(a.wait_bytes(13) and b.wait_bytes(13))
            c = srv.conn()  # third connection, keep-alive
            c.request("POST", "/conf.broadcast",
                      body=json.dumps({"channel": ch, "event": "e", "data": "x"}))
            r = c.getresponse()
            self.assertEqual(json.loads(r.read()), {"clients": 2})
            # A fourth connection is over the cap.
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
            s.sendall(b"GET /conf.sse HTTP/1.1\r\nHost: x\r\n\r\n")
            out = b""
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    out += d
            except OSError:
                pass
            s.close()
            self.assertTrue(out == b"" or b" 503 " in out.split(b"\r\n")[0], out[:100])
            for x in (a, b):
                self.assertTrue(x.wait_for(lambda body: b"event: e\n" in body))
                x.close()
            # Both slots come back: two new streams are accepted and counted.
            deadline = time.time() + 5
            n = None
            while time.time() < deadline:
                c.request("POST", "/conf.broadcast",
                          body=json.dumps({"channel": ch, "event": "e", "data": "y"}))
                n = json.loads(c.getresponse().read())["clients"]
                if n == 0:
                    break
                time.sleep(0.05)
            self.assertEqual(n, 0)
            d, e = SSEClient(srv.port, [ch]), SSEClient(srv.port, [ch])
            self.assertTrue(d.wait_bytes(13) and e.wait_bytes(13))
            self.assertEqual(d.status, 200)
            c.request("POST", "/conf.broadcast",
                      body=json.dumps({"channel": ch, "event": "z", "data": "ok"}))
            self.assertEqual(json.loads(c.getresponse().read()), {"clients": 2})
            for x in (d, e):
                self.assertTrue(x.wait_for(lambda body: b"event: z\ndata: ok\n" in body))
                x.close()
            c.close()

    def test_bytes_after_the_request_are_ignored(self):
        # A client that pipelines more bytes behind its stream request: the
        # stream goes on, the extra bytes are discarded, the server keeps
        # serving.
        with Server() as srv:
            ch = chan()
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /conf.sse?channel=" + ch.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /conf.sse HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while b"retry: " not in got:
                got += s.recv(4096)
            time.sleep(0.2)
            s.sendall(b"garbage that is not HTTP\r\n\r\n" * 100)
            time.sleep(0.2)
            self.assertEqual(broadcast(srv, ch, "after", "still here").json, {"clients": 1})
            deadline = time.time() + 5
            while b"data: still here" not in got and time.time() < deadline:
                got += s.recv(4096)
            self.assertIn(b"event: after\ndata: still here\n\n", got)
            self.assertEqual(got.count(b"HTTP/1.1 "), 1)
            s.close()

    def test_heartbeat_comment(self):
        with Server(env={"DK_SSE_HEARTBEAT_MS": "200"}) as srv:
            c = SSEClient(srv.port, ["hb"])
            try:
                self.assertTrue(c.wait_for(lambda b: re.search(rb": heartbeat \d{13}\n\n", b), 3),
                                c.body)
                self.assertTrue(c.body.startswith(b"retry: 3000\n\n: heartbeat "))
                first = c.body.count(b": heartbeat")
                self.assertTrue(c.wait_for(lambda b: b.count(b": heartbeat") >= first + 2, 3))
            finally:
                c.close()

    def test_client_limits_503(self):
        env = {"DK_SSE_MAX_CLIENTS": "3", "DK_SSE_MAX_PER_CHANNEL": "1"}
        with Server(env=env) as srv:
            a = SSEClient(srv.port, ["one"])
            b = SSEClient(srv.port, ["one"])
            self.assertEqual(a.status, 200)
            self.assertEqual(b.status, 503)
            self.assertTrue(b.wait_for(lambda x: b"SERVICE_UNAVAILABLE" in x, 3), b.body)
            c = SSEClient(srv.port, ["two"])
            d = SSEClient(srv.port, ["three"])
            e = SSEClient(srv.port, ["four"])
            self.assertEqual((c.status, d.status, e.status), (200, 200, 503))
            for x in (a, b, c, d, e):
                x.close()

    def test_slow_reader_cut_off_others_unaffected(self):
        n, size = 300, 32 * 1024
        with Server(env={"DK_SSE_SEND_LIMIT": "131072"}) as srv:
            slow = SSEClient(srv.port, ["bulk"], rcvbuf=4096)
            fast = SSEClient(srv.port, ["bulk"])
            payload = "x" * size
            got = {"n": 0}

            def reader():
                # Only the tail is searched: the body grows to megabytes.
                fast.wait_for(lambda b: b"id: last\n" in b[-(size + 100):], 60)
                got["n"] = fast.body.count(b"event: big")

            t = threading.Thread(target=reader)
            t.start()
            counts = []
            start = time.time()
            for i in range(n):
                id = "last" if i == n - 1 else None
                counts.append(broadcast(srv, "bulk", "big", payload, id).json["clients"])
            t.join(60)
            elapsed = time.time() - start
            self.assertEqual(got["n"], n)
            self.assertLess(elapsed, 30)
            # The slow client was dropped along the way; later broadcasts reach one client.
            self.assertEqual(counts[0], 2)
            self.assertEqual(counts[-1], 1)
            # Its connection is cut: draining it reaches the end, short of everything.
            self.assertTrue(slow.read_to_end(10))
            self.assertLess(slow.body.count(b"event: big"), n)
            self.assertFalse(slow.ended and slow.body.count(b"event: big") == n)
            self.assertEqual(broadcast(srv, "bulk", "after", 1).json["clients"], 1)
            slow.close()
            fast.close()

    def test_large_replay_not_cut_off(self):
        # DK_SSE_REPLAY_IDLE_CHANNELS: windows also for channels nobody listens to (asked for).
        with Server(env={"DK_SSE_SEND_LIMIT": "65536", "DK_SSE_REPLAY_IDLE_CHANNELS": "1"}) as srv:
            first = broadcast(srv, "big", "e", "start").json
            self.assertEqual(first, {"clients": 0})
            for i in range(40):
                broadcast(srv, "big", "e", "y" * 20000, "b-%d" % i)
            c = SSEClient(srv.port, ["big"], last_event_id="b-0")
            try:
                self.assertTrue(c.wait_for(lambda b: b"id: b-39\n" in b[-25000:], 10))
                self.assertEqual([e["id"] for e in c.events()], ["b-%d" % i for i in range(1, 40)])
                self.assertEqual(broadcast(srv, "big", "e", "next").json, {"clients": 1})
            finally:
                c.close()

    def test_replay_window_byte_cap(self):
        with Server(env={"DK_SSE_REPLAY_MAX_BYTES": "50000"}) as srv:
            w = SSEClient(srv.port, ["capped"])
            try:
                for i in range(10):
                    broadcast(srv, "capped", "e", "z" * 20000, "c-%d" % i)
                # Only the last two 20 kB frames fit in 50 kB: an old id gets a reset ...
                old = SSEClient(srv.port, ["capped"], last_event_id="c-1")
                self.assertTrue(old.wait_for(lambda b: b"event: reset" in b))
                old.close()
                # ... one still in the window its replay.
                new = SSEClient(srv.port, ["capped"], last_event_id="c-8")
                self.assertTrue(new.wait_for(lambda b: b"id: c-9\n" in b[-25000:], 10))
                self.assertEqual([e["id"] for e in new.events()], ["c-9"])
                new.close()
            finally:
                w.close()

    def test_sigterm_ends_streams_cleanly(self):
        srv = Server(env={"DK_SSE_HEARTBEAT_MS": "200"})
        try:
            a = SSEClient(srv.port, ["s"])
            b = SSEClient(srv.port, ["s"], method="POST")
            self.assertTrue(a.wait_bytes(13) and b.wait_bytes(13))
            self.assertEqual(broadcast(srv, "s", "bye", "soon", "b1").json["clients"], 2)
            start = time.time()
            srv.proc.send_signal(signal.SIGTERM)
            for c in (a, b):
                self.assertTrue(c.read_to_end(5))
                self.assertTrue(c.ended, "stream not terminated cleanly: %r" % c.body[-200:])
                self.assertIn(b"id: b1\nevent: bye\ndata: soon\n\n", c.body)
            self.assertEqual(srv.proc.wait(timeout=10), 0)
            self.assertLess(time.time() - start, 5)
            a.close()
            b.close()
        finally:
            srv.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
