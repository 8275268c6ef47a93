#!/usr/bin/env python3
"""nreq: send exactly N identical keep-alive requests, for instruction counts.

    bench/nreq.py PORT N [CONNS]

POSTs bench/echo.lua's body to /conf.echo N times (spread over CONNS keep-alive
connections, default 4, each one request in flight at a time) and checks that
every answer is a 200 with the same body. With a fixed request count, a
server's instructions (valgrind --tool=callgrind) divide into a cost per
request; see docs/performance.md, "Per-request cost".
"""
import selectors
import socket
import sys

BODY = b'{"name":"bench","n":7,"tags":["a","b"]}'
REQ = (b"POST /conf.echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
       b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    sel = selectors.DefaultSelector()
    left = n
    state = {}
    for _ in range(min(conns, n)):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        state[s] = bytearray()
        sel.register(s, selectors.EVENT_READ)
        s.sendall(REQ)
        left -= 1
    done, first = 0, None
    while done < n:
        events = sel.select(timeout=30)
        if not events:
            sys.exit("nreq: timeout after %d answers" % done)
        for key, _ in events:
            s = key.fileobj
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("nreq: connection closed after %d answers" % done)
            buf = state[s]
            buf += chunk
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buf[:end]).lower()
                i = head.find(b"content-length:")
                clen = int(head[i + 15:head.index(b"\r\n", i) if b"\r\n" in head[i:] else None])
                if len(buf) < end + 4 + clen:
                    break
                status = head[9:12]
                body = bytes(buf[end + 4:end + 4 + clen])
                del buf[:end + 4 + clen]
                if status != b"200" or (first is not None and body != first):
                    sys.exit("nreq: unexpected answer %r %r" % (status, body))
                first = body
                done += 1
                if left > 0:
                    s.sendall(REQ)
                    left -= 1
    for s in state:
        s.close()
    print("nreq: %d answers, body %s" % (done, first.decode()))


if __name__ == "__main__":
    main()
