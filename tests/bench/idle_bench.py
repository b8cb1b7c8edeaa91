#!/usr/bin/env python3
"""Benchmark: what an idle daemon costs.  Prints figures; asserts nothing.

  python3 tests/bench/idle_bench.py [BUILD_DIR]      (VS_IDLE_SECONDS, default 600)

One 512 MiB vault on tmpfs, unlocked, saved and pushed to a dir: remote,
`Interval 1m`, the status server on; then nothing happens for
VS_IDLE_SECONDS.  The CPU time (user + system) of all four processes (the
parent, watcher, uploader and status server) over that span, from /proc, as a
share of one core; beside it the CPU of one full save of the same vault, so the
idle figure can be read as "so many saves a day".  Aim (issue 12): under 0.05%
of a core for the four together.
"""
import os
import pwd
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import save_bench as sb  # noqa: E402
from tick_bench import LoggingDaemon, change_one, cpu_s, measured_syncs  # noqa: E402
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from conftest import proc_children  # noqa: E402

SECONDS = int(os.environ.get("VS_IDLE_SECONDS", "600"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    sb.BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    work = tempfile.mkdtemp(prefix="vs-ibench-", dir="/dev/shm")
    vault = os.path.join(work, "vault")
    os.makedirs(vault)
    sb.make_big(vault)
    state = tempfile.mkdtemp(prefix="vs-ibench-state-", dir="/dev/shm")
    # Outside the private work directory: the uploader, which writes a dir: remote, runs
    # as PrivsepUser when the daemon runs as root.
    remote = tempfile.mkdtemp(prefix="vs-ibench-remote-", dir="/dev/shm")
    if os.geteuid() == 0:
        pw = pwd.getpwnam("_vaultsync")
        os.chown(remote, pw.pw_uid, pw.pw_gid)
    d = LoggingDaemon(work, vault, state)
    with open(d.conf, "w") as f:
        f.write("RuntimeDir %s/run\nStateDir %s\nLogLevel info\nStatusAPI yes\n"
                "StatusListen 127.0.0.1:%d\nVault b\n  Path %s\n  Mount no\n  MountSize 1G\n"
                "  Interval 1m\n  Remote dir:%s\n" % (work, state, free_port(), vault, remote))
    d.start()
    try:
        d.ctl("init", "b", "--passphrase-file", d.passfile)
        r = d.ctl("sync", "b", check=False)
        if r.returncode != 0:
            raise SystemExit("sync: %s%s" % (r.stdout, r.stderr))
        change_one(vault)
        time.sleep(0.05)
        save_cpu, _, _ = measured_syncs(d)
        time.sleep(2)	# the push and the status server's first snapshots settle
        pids = [d.p.pid] + [c[0] for c in proc_children().get(d.p.pid, [])]
        if len(pids) != 4:
            raise SystemExit("expected the parent and three children, found %s" % pids)
        c0, t0 = sum(cpu_s(p) for p in pids), time.monotonic()
        per0 = {p: cpu_s(p) for p in pids}
        ticks0 = len(d.tick_ends())
        time.sleep(SECONDS)
        span = time.monotonic() - t0
        per = {p: cpu_s(p) - per0[p] for p in pids}
        total = sum(cpu_s(p) for p in pids) - c0
        ticks = d.tick_ends()[ticks0:]
        print("vaultsync idle benchmark: 512 MiB vault, Interval 1m, dir: remote, status server "
              "on, %d s" % round(span))
        for p in pids:
            with open("/proc/%d/comm" % p) as f:
                name = f.read().strip()
            print("  %-18s %7.3f s CPU" % (name, per[p]))
        share = 100 * total / span
        print("  all four           %7.3f s CPU = %.4f%% of a core (aim < 0.05%%: %s); "
              "one full save of this vault: %.3f s CPU (idle = %.1f saves a day)"
              % (total, share, "met" if share < 0.05 else "NOT met", save_cpu,
                 total / span * 86400 / max(save_cpu, 1e-3)))
        print("  ticks in the span: %d, of which %d found nothing changed"
              % (len(ticks), sum(1 for e in ticks if e.get("unchanged"))))
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(remote, ignore_errors=True)


if __name__ == "__main__":
    main()
