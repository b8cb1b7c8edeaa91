"""The control socket and the loop under pressure: many ctl requests from 50
concurrent clients mixed with init, lock, unlock and pull; reload storms
during ticks; a vault whose files carry future and past mtimes (clock
jumps as the archive sees them)."""
import os
import random
import signal
import threading
import time

import pytest

from conftest import tally, verdict

READ_ONLY = [("status",), ("status", "--json"), ("status", "v"), ("version",),
             ("history", "v"), ("sync", "v"), ("push", "v"), ("status", "--json", "v")]


@pytest.mark.root
def test_ctl_storm_with_lifecycle(envs, s3, rnd, scale):
    e = envs(s3v=s3, conf="Interval 2s\nHeadPollInterval 1s\n")
    e.start()
    w = e.init()
    w.start()
    total = scale.pick(800, 10000)
    clients = 50
    lock = threading.Lock()
    counts = {"sent": 0, "answered": 0}
    bad = []
    stop = threading.Event()

    def client(seed):
        r = random.Random(seed)
        while not stop.is_set():
            with lock:
                if counts["sent"] >= total:
                    return
                counts["sent"] += 1
            args = r.choice(READ_ONLY)
            res = e.ctl(*args, timeout=120)
            text = (res.stdout + res.stderr).strip()
            with lock:
                counts["answered"] += res.returncode != -1
            # 0 and 1 are answers; 2 (no daemon), 75 (refused, try again) and
            # a missing answer are not.
            if res.returncode not in (0, 1) or "try again" in text:
                with lock:
                    bad.append((args, res.returncode, text[:200]))

    threads = [threading.Thread(target=client, args=(rnd.random(),), daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    # Lifecycle from the side: lock, unlock, pull, a second init.
    cycles = 0
    while any(t.is_alive() for t in threads):
        time.sleep(rnd.uniform(0.3, 1.5))
        op = rnd.choice(["lock-unlock", "pull", "init"])
        with w.paused():
            want = w.model
            if op == "lock-unlock":
                r = e.ctl("lock", "v", timeout=120)
                if r.returncode != 0:
                    e.problems.append("lock: %d %r" % (r.returncode,
                                                       (r.stdout + r.stderr).strip()))
                    continue
                got = e.decrypt_tree(e.read_local())
                tally(states_checked=1)
                if got != want:
                    e.problems.append("lock did not save the last state (a change lost)")
                    tally(lost=1)
                time.sleep(rnd.uniform(0, 0.5))
                r = e.ctl("unlock", "v", "--passphrase-file", e.passfile, timeout=120)
                if r.returncode != 0:
                    e.problems.append("unlock: %d %r" % (r.returncode,
                                                         (r.stdout + r.stderr).strip()))
                    # Nothing more can run against a locked vault.
                    stop.set()
                    break
                if w.resync() != want:
                    e.problems.append("unlock did not restore the state saved at lock")
            elif op == "pull":
                r = e.ctl("pull", "v", "--passphrase-file", e.passfile, timeout=120)
                if r.returncode != 0:
                    e.problems.append("pull: %d %r" % (r.returncode,
                                                       (r.stdout + r.stderr).strip()))
                w.resync()
            else:
                r = e.ctl("init", "v", "--passphrase-file", e.passfile, timeout=120)
                if r.returncode == 0 or "busy" in r.stdout + r.stderr:
                    e.problems.append("init of an initialised vault: %d %r"
                                      % (r.returncode, (r.stdout + r.stderr).strip()))
        cycles += 1
    for t in threads:
        t.join(150)
    tally(faults=cycles)
    if bad:
        e.problems.append("%d of %d requests got no proper answer, e.g. %s"
                          % (len(bad), counts["sent"], bad[:5]))
    verdict(e, final_bound=60)


@pytest.mark.root
def test_reload_storm_during_ticks(envs, s3, rnd, scale):
    e = envs(s3v=s3, conf="Interval 1s\nHeadPollInterval 1s\n")
    e.start()
    w = e.init()
    w.delay = (0.0, 0.02)
    w.start()
    with open(e.d.conf) as f:
        base = f.read()
    variants = [base, base.replace("Interval 1s", "Interval 2s"),
                base + "  HistoryKeep 5\n", base.replace("WatcherDebounce 100ms",
                                                         "WatcherDebounce 300ms")]
    reloads = 0
    end = time.monotonic() + scale.pick(6, 120)
    while time.monotonic() < end:
        with open(e.d.conf + ".new", "w") as f:
            f.write(rnd.choice(variants))
        os.rename(e.d.conf + ".new", e.d.conf)
        if rnd.random() < 0.5:
            os.kill(e.d.proc.pid, signal.SIGHUP)
        else:
            r = e.ctl("reload", timeout=60)
            if r.returncode != 0:
                e.problems.append("reload: %d %r" % (r.returncode,
                                                     (r.stdout + r.stderr).strip()))
        reloads += 1
        time.sleep(rnd.uniform(0.02, 0.1))
        if rnd.random() < 0.1:
            e.ctl("sync", "v", timeout=60)
    tally(faults=reloads)
    with open(e.d.conf, "w") as f:
        f.write(base)
    verdict(e, final_bound=60, unasked_within=20)


def test_clock_jumps_in_mtimes(envs, rnd, scale):
    """Files dated 1970, 2038+, 2100 and 9999 next to ordinary ones (user mode)."""
    e = envs(user_mode=True, remote="dir", conf="Interval 2s\n")
    e.start()
    w = e.init(mtimes=[1, 86400, 2**31 - 1, 2**31 + 7, 4102444800, 253402300799,
                       int(time.time()) + 86400 * 365, int(time.time()) - 86400 * 3650])
    w.start()
    time.sleep(scale.pick(4, 60))
    tally(faults=w.steps)
    verdict(e, unasked_within=20)
