"""kill -9: a random child every 50-200 ms while files change and pushes run
(system and user mode); the parent at random points of saves and pushes,
restarted each time."""
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from conftest import binpath, pid_alive, tally, verdict, wait_for

MODES = [pytest.param(False, id="system", marks=pytest.mark.root),
         pytest.param(True, id="user")]
CHILDREN = ("watcher", "uploader", "statusd")


def ctl_traffic(e, rnd, stop, cmds=("sync", "sync", "push")):
    """Syncs and pushes from the side, one at a time, until stop is set."""
    def run():
        while not stop.is_set():
            e.ctl(rnd.choice(cmds), "v", timeout=120)
            stop.wait(rnd.uniform(0.05, 0.5))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def all_children_running(e, timeout):
    def ok():
        st = e.status()
        return st if st and all(c["state"] == "running" and c["pid"]
                                for c in st["children"]) else None
    try:
        return wait_for(ok, timeout=timeout, interval=0.2, what="every child running")
    except AssertionError:
        e.problems.append("not every child was running %ds after the kills stopped: %s"
                          % (timeout, e.status()))
        return e.status()


@pytest.mark.parametrize("user_mode", MODES)
def test_kill_random_children(envs, s3, rnd, scale, user_mode):
    e = envs(user_mode=user_mode, s3v=s3,
             conf="Interval 3s\nHeadPollInterval 1s\nHeadPollMaxInterval 4s\n")
    e.start()
    w = e.init(big=True)
    w.start()
    stop = threading.Event()
    side = ctl_traffic(e, random.Random(rnd.random()), stop)
    kills = 0
    end = time.monotonic() + scale.pick(8, 60)
    while time.monotonic() < end:
        time.sleep(rnd.uniform(0.05, 0.2))
        kids = e.children_of_parent()
        name = rnd.choice(CHILDREN)
        if name in kids:
            try:
                os.kill(kids[name], signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    stop.set()
    side.join(150)
    st = all_children_running(e, 60)
    restarts = sum(c["restarts"] for c in st["children"]) if st else 0
    tally(kills=kills, restarts=restarts, faults=kills)
    assert e.d.proc.poll() is None, "the parent died:\n" + e.d.read_log()[-3000:]
    # Changes made while the watcher was dead must still be noticed.
    verdict(e, final_bound=90, unasked_within=30)


@pytest.mark.root
def test_kill_parent_during_saves_and_pushes(envs, s3, rnd, scale):
    e = envs(s3v=s3, conf="Interval 2s\nHeadPollInterval 1s\n")
    e.start()
    w = e.init(big=True)
    w.delay = (0.0, 0.03)
    w.start()
    kills = restarts = 0
    for i in range(scale.pick(6, 120)):
        time.sleep(rnd.uniform(0.0, 0.4))
        side = subprocess.Popen(e.d.ident.wrap([binpath("vaultsyncctl"), "-s", e.d.sock,
                                                rnd.choice(["sync", "push"]), "v"]),
                                env=e.d.ident.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, 0.3))
        kids = e.children_of_parent()
        os.kill(e.d.proc.pid, signal.SIGKILL)
        e.d.proc.wait()
        kills += 1
        try:
            side.wait(10)
        except subprocess.TimeoutExpired:
            side.kill()
            e.problems.append("kill %d: vaultsyncctl still waiting 10 s after the daemon "
                              "died" % i)
        # No child outlives its parent.
        try:
            wait_for(lambda: not any(pid_alive(p) for p in kids.values()), timeout=5,
                     what="children gone")
        except AssertionError:
            e.problems.append("kill %d: children outlived the parent: %s" % (i, kids))
        data = e.read_local()
        if data is not None:
            e.check_archive("local archive after kill %d" % i, data)
        e.d.logf.close()
        e.d.logf = None
        e.d.start()
        e.note_pids()
        restarts += 1
    tally(kills=kills, restarts=restarts, faults=kills)
    verdict(e, final_bound=90, unasked_within=30)
