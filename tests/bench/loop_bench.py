#!/usr/bin/env python3
"""Benchmark: the sync loop.  Prints figures against the aims; asserts nothing.

  make bench      (or: python3 tests/bench/loop_bench.py [BUILD_DIR])

Latency: 100 single-file changes to an unlocked vault, one at a time; for
each, the time from the write to the archive on disk (the save's log record)
and to the remote (the tick_end record of a tick that pushed), with a
throwaway Ceph RGW on 127.0.0.1 as the remote.  Aims: p50 under
WatcherDebounce + 50 ms to disk and + 300 ms to RGW (Beads-style daemons
report 100-300 ms).
Idle: 60 s without changes: CPU time and context switches (wakeups) of all
four processes.  Aim: under 0.1% CPU, no wakeups beyond the configured
timers (HeadPollInterval doubling to HeadPollMaxInterval, Interval).
"""
import calendar
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from rgwbench import RGW

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), "..", "..", "build"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = int(os.environ.get("VS_BENCH_N", "100"))
IDLE_S = int(os.environ.get("VS_BENCH_IDLE_S", "60"))
DEBOUNCE_MS = 500


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def rfc3339(s):
    base, frac = s.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000.0


def records(log):
    out = []
    with open(log) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def proc_cost(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    sw = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                sw += int(line.split()[1])
    return cpu, sw


def main():
    work = tempfile.mkdtemp(prefix="vs-lbench-", dir="/dev/shm")
    rgw = None
    proc = None
    try:
        rgw = RGW(work)
        vault = os.path.join(work, "vault")
        os.makedirs(vault)
        conf = os.path.join(work, "vaultsyncd.conf")
        with open(conf, "w") as f:
            f.write("RuntimeDir %s/run\nStateDir %s/state\nLogFormat json\nStatusAPI yes\n"
                    "WatcherDebounce %dms\nVault b\n  Path %s\n  Mount no\n%s"
                    % (work, work, DEBOUNCE_MS, vault, rgw.vault_conf("loop")))
        passfile = os.path.join(work, "pass")
        with open(passfile, "w") as f:
            f.write("bench passphrase\n")
        log = os.path.join(work, "log")
        proc = subprocess.Popen([os.path.join(BUILD, "vaultsyncd-dev"), "-f", conf],
                                stdout=open(log, "w"))
        ctl = [os.path.join(BUILD, "vaultsyncctl"), "-s", os.path.join(work, "run", "ctl.sock")]
        for _ in range(200):
            if subprocess.run(ctl + ["status"], capture_output=True).returncode in (0, 1):
                break
            time.sleep(0.05)
        subprocess.run(ctl + ["init", "b", "--passphrase-file", passfile], check=True,
                       capture_output=True)
        time.sleep(2)
        disk, remote = [], []
        for i in range(N):
            seen = len(records(log))
            t0 = time.time()
            with open(os.path.join(vault, "f"), "w") as f:
                f.write("change %d\n" % i)
            deadline = time.time() + 20
            d = rm = None
            while time.time() < deadline and (d is None or rm is None):
                for rec in records(log)[seen:]:
                    m = rec.get("msg", "")
                    if d is None and m.startswith("vault b: saved"):
                        d = rfc3339(rec["time"]) - t0
                    if rm is None and rec.get("event") == "tick_end" and rec["sync"]["pushed"]:
                        rm = rfc3339(rec["time"]) - t0
                time.sleep(0.005)
            if d is not None:
                disk.append(d * 1000)
            if rm is not None:
                remote.append(rm * 1000)
            time.sleep(0.05)
        print("sync loop benchmark (WatcherDebounce %d ms, RGW on 127.0.0.1, %d changes)"
              % (DEBOUNCE_MS, N))
        print("  change to disk     p50 %6.0f ms  p99 %6.0f ms   aim p50 < %d ms: %s" % (
            pct(disk, 50), pct(disk, 99), DEBOUNCE_MS + 50,
            "met" if pct(disk, 50) < DEBOUNCE_MS + 50 else "NOT met"))
        print("  change to remote   p50 %6.0f ms  p99 %6.0f ms   aim p50 < %d ms: %s" % (
            pct(remote, 50), pct(remote, 99), DEBOUNCE_MS + 300,
            "met" if pct(remote, 50) < DEBOUNCE_MS + 300 else "NOT met"))
        st = json.loads(subprocess.run(ctl + ["status", "--json"], capture_output=True,
                                       text=True).stdout)
        pids = {"parent": proc.pid}
        pids.update({c["name"]: c["pid"] for c in st["children"] if c["pid"]})
        time.sleep(3)
        before = {n: proc_cost(p) for n, p in pids.items()}
        time.sleep(IDLE_S)
        after = {n: proc_cost(p) for n, p in pids.items()}
        total_cpu = sum(after[n][0] - before[n][0] for n in pids)
        print("  idle %d s: CPU %.3f s in all (%.3f%%; aim < 0.1%%: %s)" % (
            IDLE_S, total_cpu, 100 * total_cpu / IDLE_S,
            "met" if 100 * total_cpu / IDLE_S < 0.1 else "NOT met"))
        for n in pids:
            print("    %-9s CPU %.3f s, %d context switches" % (
                n, after[n][0] - before[n][0], after[n][1] - before[n][1]))
        print("    (expected wakeups: the head poller, every 10 s doubling to 120 s;"
              " Interval 5 m)")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        if rgw is not None:
            rgw.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
