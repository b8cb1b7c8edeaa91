"""Every control request waits its turn, and its reply describes the state
after the request: a sync never answers for a tick that began before it, a
pull or lock meeting a busy vault waits instead of answering "busy", and a
push that cannot carry the newest changes says so."""
import os
import shutil
import subprocess
import threading
import time

import pytest

from conftest import IS_ROOT, wait_for
from test_remote_dir import restore
from test_sync_loop import dirloop, ticks, write  # noqa: F401 (a fixture)

# Slow (busy writers and queues of requests): the sanitizer pass of make check leaves it out.
pytestmark = pytest.mark.slow


@pytest.fixture
def busyloop(dirloop):
    """A dir: remote, Interval 1h, a short debounce, and room for big files."""
    def make(mount_size="64M"):
        return dirloop(conf="WatcherDebounce 20ms\n", mount_size=mount_size)
    return make


def started(e):
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    return e


class Writer:
    """Keeps the vault busy: a big file rewritten without pause, so that a
    save is running (or about to) whenever a request arrives."""

    def __init__(self, e, size=12 << 20, pause=0.01):
        self.e, self.size, self.pause, self.stop = e, size, pause, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.n = 0

    def run(self):
        blob = os.urandom(self.size)
        while not self.stop.is_set():
            self.n += 1
            write_bytes(self.e, "bulk", blob[self.n % 997:] + blob[:self.n % 997])
            time.sleep(self.pause)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join()


def write_bytes(e, rel, data):
    p = os.path.join(e.path, rel)
    with open(p + ".tmp", "wb") as f:
        f.write(data)
    if not e.user_mode and IS_ROOT:
        os.chown(p + ".tmp", *e.owner)
    os.rename(p + ".tmp", p)


def archive_has(e, archive, rel, content):
    out = restore(e, archive)
    try:
        p = os.path.join(out, rel)
        return os.path.exists(p) and open(p).read() == content
    finally:
        shutil.rmtree(out, ignore_errors=True)


def snapshot(e, path):
    dst = os.path.join(e.d.dir, "snap-%d" % time.monotonic_ns())
    shutil.copyfile(path, dst)
    return dst


def test_sync_answers_only_for_a_tick_that_saw_the_write(busyloop):
    """A script writes a secret, syncs, then deletes its other copy: the
    archive the sync reports (and every later one) must hold the secret."""
    e = started(busyloop())
    with Writer(e) as w:
        wait_for(lambda: len(ticks(e.d, "tick_end", "watcher")) >= 1, timeout=30,
                 what="the writer's first tick")
        for i in range(12):
            marker = "secret %d %s\n" % (i, os.urandom(8).hex())
            write(e, "marker-%d" % i, marker)
            r = e.ctl("sync", "v")
            # Copied at once: a later tick may replace them, but never with less.
            local = snapshot(e, e.archive)
            remote = snapshot(e, e.rlatest)
            assert archive_has(e, local, "marker-%d" % i, marker), (i, r.stdout)
            assert archive_has(e, remote, "marker-%d" % i, marker), (i, r.stdout)
        assert w.n > 12	# the vault really was busy throughout
    assert e.d.stop() == 0


def test_push_is_not_starved_by_a_writer_that_never_pauses(busyloop):
    """A push first saves the vault, by one tick of its own.  With a writer
    that never pauses another change is pending after every tick: the push,
    and every request queued behind it, must still get their turn, not wait
    while tick follows tick (on a busy machine, for good)."""
    e = started(busyloop())
    e.ctl("sync", "v")
    # Pauses longer than the debounce: the watcher reports every write, and a
    # change arrives during every tick.
    with Writer(e, pause=0.05) as w:
        wait_for(lambda: len(ticks(e.d, "tick_end", "watcher")) >= 1, timeout=30,
                 what="the writer's first tick")
        # A push quicker than one write of the writer did not meet a busy
        # vault: every try is checked, and one must have met the writer.
        for attempt in range(5):
            marker = "before the push %d %s\n" % (attempt, os.urandom(8).hex())
            write(e, "marker", marker)
            n0, w0 = len(ticks(e.d, "tick_start")), w.n
            push = e.d.ctl("push", "v", check=False, timeout=150)
            n1, w1 = len(ticks(e.d, "tick_start")), w.n
            local = snapshot(e, e.rlatest)
            assert push.returncode == 0, push.stdout + push.stderr
            # Its own tick, and at most one already under way when it came.
            assert n1 - n0 <= 2, "%d ticks started while the push waited" % (n1 - n0)
            # What the push sent holds the change written before it.
            assert archive_has(e, local, "marker", marker), push.stdout
            if w1 > w0:
                break
        else:
            pytest.fail("the writer never wrote while a push waited: the vault was not busy")
        hist = e.d.ctl("history", "v", check=False, timeout=150)
    assert hist.returncode == 0, hist.stdout + hist.stderr
    assert e.d.stop() == 0


def test_pull_and_lock_wait_for_a_running_save(busyloop):
    """A pull or a lock that meets a tick in progress waits its turn."""
    e = started(busyloop())
    e.ctl("sync", "v")
    for i in range(3):
        n = len(ticks(e.d, "tick_start"))
        write_bytes(e, "bulk", os.urandom(8 << 20))
        wait_for(lambda: len(ticks(e.d, "tick_start")) > n, timeout=30,
                 what="a tick to start")
        r = e.d.ctl("pull", "v", "--passphrase-file", e.passfile, check=False, timeout=120)
        assert r.returncode == 0, (i, r.stdout + r.stderr)
        assert "busy" not in r.stdout + r.stderr
    # The lock comes while the save of the last change runs.
    n = len(ticks(e.d, "tick_start"))
    write_bytes(e, "last", os.urandom(12 << 20))
    wait_for(lambda: len(ticks(e.d, "tick_start")) > n, timeout=30, what="a tick to start")
    r = e.d.ctl("lock", "v", check=False, timeout=120)
    assert r.returncode == 0 and "busy" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert e.vstate()["state"] == "locked"
    # Nothing was lost on the way: the locked archive holds the last change.
    out = restore(e, e.archive)
    try:
        assert os.path.getsize(os.path.join(out, "last")) == 12 << 20
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert e.d.stop() == 0


def test_many_clients_each_get_their_turn(busyloop):
    """Concurrent syncs, pushes and history listings on one busy vault: every
    one is answered, none with "busy" or "try again"."""
    e = started(busyloop())
    results = []

    def one(cmd):
        # Eighteen requests in a row on one vault: the last waits for all others.
        r = e.d.ctl(*cmd, check=False, timeout=300)
        results.append((cmd, r.returncode, r.stdout + r.stderr))
    cmds = [("sync", "v"), ("push", "v"), ("history", "v")] * 6
    with Writer(e, size=2 << 20):
        ts = [threading.Thread(target=one, args=(c,)) for c in cmds]
        for t in ts:
            t.start()
        for t in ts:
            t.join(310)
    assert len(results) == len(cmds)
    for cmd, rc, out in results:
        assert rc == 0, (cmd, out)
        assert "busy" not in out and "try again" not in out, (cmd, out)
    assert e.d.stop() == 0


@pytest.mark.root
def test_push_after_a_failed_save_says_the_newest_change_is_missing(busyloop, workdir):
    """State directory full: the save fails; a push then uploads the previous
    archive, and must say that the newest change is not in it (exit 1)."""
    if not IS_ROOT:
        pytest.skip("needs root to mount a small tmpfs")
    e = busyloop(mount_size="16M")
    small = os.path.join(workdir, "state")
    os.makedirs(small, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=0755", "tmpfs", small],
                   check=True)
    try:
        if e.user_mode:
            os.chown(small, e.d.ident.uid, e.d.ident.gid)
        started(e)
        e.ctl("sync", "v")
        write_bytes(e, "too-big", os.urandom(3 << 20))
        wait_for(lambda: e.vstate()["consecutive_failures"] > 0, timeout=30,
                 what="the save to fail")
        r = e.ctl("push", "v", check=False)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert "newest changes are NOT in this push" in out, out
        assert "No space left" in out or "ENOSPC" in out or "space" in out, out
    finally:
        e.d.stop()
        subprocess.run(["umount", "-l", small])


def test_clients_beyond_the_slots_wait_instead_of_failing(busyloop):
    """More concurrent requests than the control socket has slots, all held
    up by a stopped uploader: the extra clients wait to be accepted; none is
    told "too many control connections; try again"."""
    import signal
    e = started(busyloop(mount_size="16M"))
    e.ctl("sync", "v")
    results = []

    def one(i):
        write(e, "f%d" % i, "x%d\n" % i)
        r = e.d.ctl("sync", "v", check=False, timeout=300)
        results.append((i, r.returncode, r.stdout + r.stderr))
    up = e.d.child_pids()["uploader"]
    os.kill(up, signal.SIGSTOP)
    try:
        ts = [threading.Thread(target=one, args=(i,)) for i in range(60)]
        for t in ts:
            t.start()
        # Every slot fills with a request waiting for the stopped uploader.
        time.sleep(4)
    finally:
        os.kill(up, signal.SIGCONT)
    for t in ts:
        t.join(310)
    assert len(results) == 60
    bad = [(i, rc, out) for i, rc, out in results if rc != 0]
    assert not bad, bad[:5]
    assert e.d.stop() == 0


def test_push_carries_what_was_written_just_before_it(dirloop):
    """write, then push at once: the watcher has not reported the change yet
    (a long debounce), and the push must still save it first, so that the
    remote latest and the history copy hold it."""
    e = started(dirloop(conf="WatcherDebounce 30s\n"))
    e.ctl("sync", "v")
    for i in range(3):
        marker = "written just before push %d %s\n" % (i, os.urandom(8).hex())
        write(e, "marker", marker)
        r = e.ctl("push", "v")
        assert r.returncode == 0, r.stdout + r.stderr
        assert archive_has(e, snapshot(e, e.rlatest), "marker", marker), (i, r.stdout)
        hdir = os.path.join(os.path.dirname(e.rlatest), "history")
        # Names within one second sort by hash: the newest copy is the last written.
        newest = max(os.listdir(hdir), key=lambda n: os.stat(os.path.join(hdir, n)).st_mtime_ns)
        assert archive_has(e, snapshot(e, os.path.join(hdir, newest)), "marker", marker), newest
    assert e.d.stop() == 0
