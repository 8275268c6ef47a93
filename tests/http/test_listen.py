"""Listening sockets (issue 16 item 2): a second server on a port another
process holds fails at start-up, while a server's own HTTP threads each get a
listener on the shared port."""
import os
import socket
import time
import unittest

from dk import Server, free_port


def listeners(port):
    """Number of TCP sockets in LISTEN state on `port` (any address), from /proc/net/tcp*."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        with open(name) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, state = cols[1], cols[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


class PortInUse(unittest.TestCase):
    def assert_refused(self, port, threads="1"):
        t0 = time.monotonic()
        srv = Server("--threads", threads, port=port, wait=False)
        try:
            rc = srv.proc.wait(timeout=10)
            took = time.monotonic() - t0
            out = srv.output()
        finally:
            srv.kill()
            os.unlink(srv.log.name)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("cannot listen on 127.0.0.1:%d: address already in use" % port, out)
        self.assertLess(took, 5.0, out)  # the contract says within a second; loaded machine

    def test_second_instance_exits_nonzero(self):
        with Server("--threads", "2") as first:
            self.assertEqual(listeners(first.port), 2)
            self.assert_refused(first.port, threads="2")
            # The first one keeps the port to itself: no listener was added to it
            # and every request is answered.
            self.assertEqual(listeners(first.port), 2)
            for _ in range(20):
                self.assertEqual(first.call("conf.echo", {"name": "x"}).status, 200)

    def test_foreign_reuseport_listener(self):
        # Before the fix the server joined this socket's SO_REUSEPORT group and
        # the two processes shared the port.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            self.assert_refused(s.getsockname()[1])
        finally:
            s.close()

    def test_foreign_plain_listener_on_any_address(self):
        s = socket.socket()
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        try:
            self.assert_refused(s.getsockname()[1], threads="3")
        finally:
            s.close()

    def test_each_thread_gets_a_listener(self):
        port = free_port()
        with Server("--threads", "4", port=port) as srv:
            self.assertEqual(listeners(port), 4)
            for _ in range(40):
                self.assertEqual(srv.call("conf.echo", {"name": "x"}).status, 200)
        # And the port is free again once the server has stopped.
        with Server(port=port) as again:
            self.assertEqual(again.call("conf.echo", {"name": "y"}).status, 200)


if __name__ == "__main__":
    unittest.main()
