#!/usr/bin/env python3
"""Benchmark: vaultsyncctl status round trips and the idle memory of the four
processes.  Prints figures and ratios; asserts nothing (benchmarks are not tests).

  make bench            (or: python3 tests/bench/status_bench.py [BUILD_DIR])

Round trip is measured two ways, 1000 calls each, in the same run:
  - exec:   `vaultsyncctl status --json` as a user would run it, against
            `/bin/true` exec'd the same way (the floor any CLI pays);
  - socket: connect + HELLO + status request + full snapshot, in-process,
            which is the daemon's own share of the cost.
Then statusd's GET /v1/status, 10,000 requests over kept-alive connections,
from 1 client and from 32 at once (spread over 127.0.0.1-4: statusd admits 8
connections per address), printed beside the socket round trip.
"""
import http.client
import threading
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
N = int(os.environ.get("VS_BENCH_N", "1000"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def time_exec(argv):
    out = []
    for _ in range(N):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((time.perf_counter() - t) * 1000)
    return out


def time_socket(path):
    hello = struct.pack("=IIiI32s", 1, 4, os.getpid(), 0, b"bench")
    req = struct.pack("=II64s256s", 1, 0, b"", b"")
    out = []
    for i in range(N):
        t = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        s.recv(8192)
        s.send(struct.pack("=IIII", 1, len(hello), 1, 0) + hello)
        s.send(struct.pack("=IIII", 13, len(req), 2, 0) + req)
        while True:
            m = s.recv(8192)
            if struct.unpack("=I", m[:4])[0] == 12:	# SNAP_END
                break
        s.close()
        out.append((time.perf_counter() - t) * 1000)
    return out


def http_latency(url, token, clients, total):
    """Per-request latency (ms) of GET /v1/status from `clients` threads."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    lat, lock = [], threading.Lock()

    def one(k):
        c = http.client.HTTPConnection(host, int(port), timeout=10,
                                       source_address=("127.0.0.%d" % (1 + k % 4), 0))
        mine = []
        for _ in range(total // clients):
            t = time.perf_counter()
            c.request("GET", "/v1/status", headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            r.read()
            mine.append((time.perf_counter() - t) * 1000)
            if r.status != 200:
                raise SystemExit("GET /v1/status: %d" % r.status)
        c.close()
        with lock:
            lat.extend(mine)
    ts = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


def rss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        v = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1] == "kB"}
    return v["Rss"], v["Pss"]


def main():
    work = tempfile.mkdtemp(prefix="vs-bench-")
    os.makedirs(os.path.join(work, "vault"))
    conf = os.path.join(work, "vaultsyncd.conf")
    with open(conf, "w") as f:
        f.write("RuntimeDir %s/run\nStateDir %s/state\nLogFormat json\nLogLevel warning\n"
                "Vault bench\n  Path %s/vault\n  Mount no\n  Remote dir:%s/remote\n"
                % (work, work, work, work))
    args = [os.path.join(BUILD, "vaultsyncd-dev"), "-f", conf]
    if os.geteuid() != 0:
        args.append("--user")
    d = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    sock = os.path.join(work, "run", "ctl.sock")
    ctl = [os.path.join(BUILD, "vaultsyncctl"), "-s", sock, "status", "--json"]
    try:
        for _ in range(200):
            r = subprocess.run(ctl, capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.05)
        st = json.loads(r.stdout)
        time.sleep(1)
        ex = time_exec(ctl)
        floor = time_exec(["/bin/true"])
        so = time_socket(sock)
        print("vaultsyncctl status round trip, %d calls each (ms):" % N)
        for name, xs in (("exec vaultsyncctl status", ex), ("exec /bin/true (floor)", floor),
                         ("socket status snapshot", so)):
            print("  %-28s p50 %7.3f  p99 %7.3f  mean %7.3f" % (
                name, pct(xs, 50), pct(xs, 99), statistics.mean(xs)))
        print("  ratio exec status / exec true: p50 %.2fx" % (pct(ex, 50) / pct(floor, 50)))
        print("  aim: p50 under 1 ms (Beads-style daemons report 3-5 ms): exec %s, socket %s" % (
            "met" if pct(ex, 50) < 1 else "NOT met", "met" if pct(so, 50) < 1 else "NOT met"))
        with open(os.path.join(work, "run", "daemon.json")) as f:
            dj = json.load(f)
        print("statusd GET /v1/status, 10000 requests (ms):")
        for clients in (1, 32):
            xs = http_latency(dj["url"], dj["token"], clients, 10000)
            print("  %2d client(s)                 p50 %7.3f  p99 %7.3f  mean %7.3f;"
                  " p50 %.2fx the socket round trip" % (clients, pct(xs, 50), pct(xs, 99),
                                                        statistics.mean(xs),
                                                        pct(xs, 50) / pct(so, 50)))
            if clients == 1:
                print("  aim: p50 under 1 ms at one client: %s" % (
                    "met" if pct(xs, 50) < 1 else "NOT met"))
        pids = {"parent": d.pid}
        pids.update({c["name"]: c["pid"] for c in st["children"]})
        total_rss = total_pss = 0
        print("idle resident memory (KiB):")
        for name, pid in pids.items():
            rss, pss = rss_kib(pid)
            total_rss += rss
            total_pss += pss
            print("  %-8s pid %-7d RSS %6d  PSS %6d" % (name, pid, rss, pss))
        print("  all four: RSS %d KiB (%.1f MiB), PSS %d KiB (%.1f MiB); aim under 24 MiB: %s" % (
            total_rss, total_rss / 1024, total_pss, total_pss / 1024,
            "met" if total_rss < 24 * 1024 else "NOT met"))
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
