"""A fault-injecting HTTP/1.1 proxy for the S3 tests: pure Python, threaded,
listening on 127.0.0.1 in front of the real RGW (the `s3` fixture's port).

    p = FaultProxy(s3.port)          # upstream on 127.0.0.1
    port = p.start()                 # Endpoint http://127.0.0.1:PORT in the config
    p.set_fault("put_no_etag", method="PUT", path=r"/vault\\.tar\\.age$")
    ...
    p.count("put_no_etag")           # how many requests it hit
    p.clear()                        # back to "pass"
    p.stop()

The daemon signs its requests for the Host it connects to; RGW checks the
signature against the Host header it receives, which the proxy passes on
unchanged, so the endpoint must be the proxy's 127.0.0.1:PORT with PathStyle
yes (as the S3 tests use anyway).

One fault at a time (set_fault replaces the previous one; add_fault adds a
rule after the others; the first rule that matches a request applies).
Every rule takes these optional filters and limits:

    method   "PUT", "GET", ... (None: any)
    path     a regular expression searched in the request target, path and
             query ("?partNumber=..."), e.g. r"/vault\\.tar\\.age$" for the
             single PUT or HEAD of that key but not its multipart parts
    times    apply to the next K matching requests only, then pass

Kinds (params in brackets, defaults after "="):

    pass               forward unchanged
    delay              [seconds=5] wait, then forward
    slow_body          [rate=4194304] read the request's body at `rate` bytes/s
                       (a slow link for the client's upload), then forward
    drip               [rate=600, pad=0] forward, send the reply at `rate`
                       bytes/s; pad adds that many bytes of extra headers
                       (X-Fault-Pad-N) so that even a short reply drips long
    reset_mid_body     [forward=True] send the headers and half the body (half
                       the headers when there is no body), then a TCP RST
    status             [code=500, forward=False] answer `code` with an S3 error
                       document; forward=True sends the request to RGW first
                       (so a write lands) and throws its reply away
    forward_then_500   status with code=500, forward=True: the ambiguous case
    bad_status         [forward=True] an unparseable status line ("HTTP/1.1 2x0")
    put_200_garbage    [forward=False] answer 200, no ETag, a body of junk
    put_200_empty      [forward=False] answer 200, no ETag, no body
    put_no_etag        forward; drop the ETag header from the reply
    close_mid_headers  [forward=True] send the status line and part of a
                       header, then close the connection
    wrong_etag         [etag=random] forward; replace the reply's ETag

Every kind that forwards also takes `after_forward`, a callable run once RGW
has answered and before the client sees anything (e.g. another device's
write slipped in between).  A reply is relayed only after it was read whole
from RGW.  The proxy answers "100 Continue" itself and drops Expect (libcurl
does not sign it).
"""
import os
import re
import socket
import struct
import threading
import time

KINDS = ("pass", "delay", "slow_body", "drip", "reset_mid_body", "status", "forward_then_500",
         "bad_status", "put_200_garbage", "put_200_empty", "put_no_etag",
         "close_mid_headers", "wrong_etag")

_REASONS = {500: ("Internal Server Error", "InternalError"),
            502: ("Bad Gateway", "InternalError"),
            503: ("Service Unavailable", "ServiceUnavailable"),
            504: ("Gateway Timeout", "InternalError")}


class _Closed(Exception):
    pass


class _Rule:
    def __init__(self, kind, method=None, path=None, times=None, **params):
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r" % kind)
        self.kind = kind
        self.method = method.upper() if method else None
        self.path = re.compile(path) if path else None
        self.times = times
        self.params = params

    def matches(self, method, target):
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        return not self.path or self.path.search(target) is not None


class _Msg:
    """A request or a reply: first line, headers (in order), raw body bytes
    (chunked framing kept as it came)."""

    def __init__(self, first, headers, body=b""):
        self.first = first
        self.headers = headers
        self.body = body

    def get(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def drop(self, name):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]

    def set(self, name, value):
        self.drop(name)
        self.headers.append((name, value))

    def head_bytes(self, pad=0):
        out = [self.first.encode("latin-1") + b"\r\n"]
        out += [("%s: %s\r\n" % (k, v)).encode("latin-1") for k, v in self.headers]
        i = 0
        while pad > 0:
            n = min(pad, 1000)
            out.append(b"X-Fault-Pad-%d: %s\r\n" % (i, b"p" * n))
            pad -= n
            i += 1
        return b"".join(out) + b"\r\n"


def _read_line(f):
    line = f.readline(65537)
    if not line:
        raise _Closed()
    if not line.endswith(b"\n"):
        raise _Closed()
    return line.rstrip(b"\r\n").decode("latin-1")


def _read_head(f):
    first = _read_line(f)
    while first == "":		# tolerate stray CRLF between messages
        first = _read_line(f)
    headers = []
    while True:
        line = _read_line(f)
        if line == "":
            return first, headers
        k, sep, v = line.partition(":")
        if sep:
            headers.append((k.strip(), v.strip()))


def _read_exact(f, n):
    data = f.read(n)
    if len(data) != n:
        raise _Closed()
    return data


def _read_body(f, msg, no_body=False, rate=None):
    """The body as raw bytes; None for length-until-close (the caller closes).
    rate: read a Content-Length body at most that many bytes a second."""
    if no_body:
        return b""
    if rate and msg.get("Content-Length") is not None:
        n, out, t0 = int(msg.get("Content-Length")), [], time.monotonic()
        while n > 0:
            k = min(n, 65536)
            out.append(_read_exact(f, k))
            n -= k
            due = sum(len(x) for x in out) / rate - (time.monotonic() - t0)
            if due > 0:
                time.sleep(due)
        return b"".join(out)
    te = (msg.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        out = []
        while True:
            line = f.readline(1024)
            if not line.endswith(b"\n"):
                raise _Closed()
            out.append(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:	# trailers, then the empty line
                    t = f.readline(65537)
                    if not t.endswith(b"\n"):
                        raise _Closed()
                    out.append(t)
                    if t in (b"\r\n", b"\n"):
                        return b"".join(out)
            out.append(_read_exact(f, size + 2))
    cl = msg.get("Content-Length")
    if cl is not None:
        return _read_exact(f, int(cl))
    return None


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, int(upstream_port))
        self.port = None
        self._lock = threading.Lock()
        self._rules = []
        self._counts = {}
        self._log = []
        self._lsock = None
        self._conns = set()
        self._stopping = False
        self._thread = None

    # ---- the API --------------------------------------------------------

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        self._lsock = s
        self.port = s.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="faultproxy", daemon=True)
        self._thread.start()
        return self.port

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def set_fault(self, kind, **params):
        rule = _Rule(kind, **params)
        with self._lock:
            self._rules = [rule]

    def add_fault(self, kind, **params):
        rule = _Rule(kind, **params)
        with self._lock:
            self._rules.append(rule)

    def clear(self):
        with self._lock:
            self._rules = []

    def count(self, kind):
        """How many requests `kind` was applied to since start."""
        with self._lock:
            return self._counts.get(kind, 0)

    def requests(self):
        """(method, target, kind) of every request seen, oldest first."""
        with self._lock:
            return list(self._log)

    def stop(self):
        self._stopping = True
        if self._lsock is not None:
            try:
                self._lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lsock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    # ---- the machinery --------------------------------------------------

    def _accept(self):
        while not self._stopping:
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _pick(self, method, target):
        with self._lock:
            for r in self._rules:
                if r.matches(method, target):
                    if r.times is not None:
                        r.times -= 1
                    self._counts[r.kind] = self._counts.get(r.kind, 0) + 1
                    self._log.append((method, target, r.kind))
                    return r.kind, dict(r.params)
            self._log.append((method, target, "pass"))
            return "pass", {}

    def _serve(self, c):
        up = [None, None]	# upstream socket, its reader
        f = c.makefile("rb")
        try:
            while not self._stopping:
                try:
                    first, headers = _read_head(f)
                except (_Closed, OSError, ValueError):
                    return
                req = _Msg(first, headers)
                parts = first.split(" ")
                if len(parts) != 3:
                    return
                method, target = parts[0].upper(), parts[1]
                if (req.get("Expect") or "").lower() == "100-continue":
                    req.drop("Expect")
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                kind, params = self._pick(method, target)
                body = _read_body(f, req, rate=float(params.get("rate", 4 << 20))
                                  if kind == "slow_body" else None)
                req.body = body or b""
                if not self._one(c, up, req, method, kind, params):
                    return
        except (OSError, _Closed):
            return
        finally:
            for s in (f, up[1], up[0], c):
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
            with self._lock:
                self._conns.discard(c)

    def _forward(self, up, req, method):
        """Send req upstream (reconnecting once if a kept connection died) and
        read the reply whole.  Returns (reply, close_after)."""
        for attempt in (0, 1):
            if up[0] is None:
                s = socket.create_connection(self.upstream, timeout=300)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                up[0], up[1] = s, s.makefile("rb")
            try:
                up[0].sendall(req.head_bytes() + req.body)
                while True:
                    first, headers = _read_head(up[1])
                    code = int(first.split(" ")[1])
                    if code >= 200:
                        break
                resp = _Msg(first, headers)
                nobody = method == "HEAD" or code in (204, 304)
                body = _read_body(up[1], resp, nobody)
                close = body is None or \
                    (resp.get("Connection") or "").lower() == "close"
                if body is None:
                    body = up[1].read()
                resp.body = body
                if close:
                    self._drop_up(up)
                return resp, close
            except (_Closed, OSError):
                self._drop_up(up)
                if attempt == 1:
                    raise
        raise _Closed()

    @staticmethod
    def _drop_up(up):
        for s in (up[1], up[0]):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
        up[0] = up[1] = None

    @staticmethod
    def _synthetic(code, reason, headers, body, method):
        h = [("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
             ("x-amz-request-id", "fault-" + os.urandom(6).hex())] + headers
        h.append(("Content-Length", str(len(body))))
        return _Msg("HTTP/1.1 %d %s" % (code, reason), h, b"" if method == "HEAD" else body)

    def _one(self, c, up, req, method, kind, params):
        """Handle one request; False when the client connection must end."""
        fwd_default = kind in ("pass", "delay", "slow_body", "drip", "reset_mid_body",
                               "forward_then_500",
                               "bad_status", "put_no_etag", "close_mid_headers",
                               "wrong_etag")
        forward = params.get("forward", fwd_default)
        if kind == "delay":
            time.sleep(float(params.get("seconds", 5)))
        resp, close = None, False
        if forward:
            try:
                resp, close = self._forward(up, req, method)
            except (_Closed, OSError, ValueError):
                return False	# RGW is gone: so is this connection
            hook = params.get("after_forward")
            if hook is not None:
                hook()
        if kind in ("status", "forward_then_500"):
            code = int(params.get("code", 500))
            reason, s3code = _REASONS.get(code, ("Error", "InternalError"))
            doc = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                   "<Message>injected by the fault proxy</Message></Error>" % s3code)
            resp = self._synthetic(code, reason, [("Content-Type", "application/xml")],
                                   doc.encode(), method)
        elif kind == "put_200_garbage":
            junk = b"\x00\xff<<garbage \x01 not a reply>>" + os.urandom(64)
            resp = self._synthetic(200, "OK", [("Content-Type", "application/xml")], junk,
                                   method)
        elif kind == "put_200_empty":
            resp = self._synthetic(200, "OK", [], b"", method)
        elif kind == "put_no_etag":
            resp.drop("ETag")
        elif kind == "wrong_etag":
            resp.set("ETag", '"%s"' % params.get("etag", os.urandom(16).hex()))
        elif kind == "bad_status":
            resp.first = "HTTP/1.1 2x0 Fine"
        if kind == "close_mid_headers":
            head = resp.head_bytes() if resp else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            cut = head.find(b"\r\n") + 2
            c.sendall(head[:cut] + head[cut:cut + 7])
            c.shutdown(socket.SHUT_WR)
            return False
        if kind == "reset_mid_body":
            head = resp.head_bytes()
            data = head + resp.body[:len(resp.body) // 2] if resp.body else \
                head[:len(head) // 2]
            c.sendall(data)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        data = resp.head_bytes(int(params.get("pad", 0)) if kind == "drip" else 0) + resp.body
        if kind == "drip":
            rate = max(1, int(params.get("rate", 600)))
            step = max(1, rate // 10)
            for i in range(0, len(data), step):
                if self._stopping:
                    return False
                c.sendall(data[i:i + step])
                time.sleep(step / rate)
        else:
            c.sendall(data)
        return not close
