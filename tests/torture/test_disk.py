"""The disks under the daemon: the archive directory full (a small tmpfs),
read-only, its archive or whole directory removed, the state directory
unwritable (user mode: no write permission), the vault tmpfs full.  While a
fault lasts, changes go on; the archive on disk must stay a whole, earlier
state; once it ends, the last state must reach the archive and the remote."""
import os
import subprocess
import time

import pytest

from conftest import tally, verdict, wait_for
from fsutil import rmtree_under_writer


def fill(path):
    """Write a file until the file system is full; its path."""
    f = os.path.join(path, "filler")
    with open(f, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (256 << 10))
                out.flush()
        except OSError:
            pass
    return f


def hold(e, seconds, what):
    """Let the writer run under the fault; the archive stays a whole state."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        data = e.read_local()
        if data is not None:
            e.check_archive("local archive while %s" % what, data)


def recovered(e, bound):
    """After the fault: the current tree saved again within bound seconds."""
    with e.writer.paused():
        want = e.writer.model
        try:
            wait_for(lambda: (lambda d: d is not None and e.decrypt_tree(d) == want)(
                e.read_local()), timeout=bound, interval=0.5, what="a save after the fault")
        except AssertionError:
            r = e.ctl("sync", "v")
            e.problems.append("no save of the current tree %ds after the fault ended "
                              "(sync then answered %d %r)" % (bound, r.returncode,
                                                              (r.stdout + r.stderr).strip()))


def temp_leftovers(e):
    try:
        return [n for n in os.listdir(e.state) if n.startswith(".")]
    except FileNotFoundError:
        return []


def remount_ro(path):
    """The kernel refuses (EBUSY) while a file there is open for writing, as
    during a save: try again until the save is between writes."""
    for _ in range(200):
        r = subprocess.run(["mount", "-o", "remount,ro", path], capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise AssertionError("could not remount %s read-only: %s" % (path, r.stderr))


def no_leftovers(e):
    left = temp_leftovers(e)
    if left:
        e.problems.append("temporary files left in the state directory: %s" % left)


@pytest.mark.root
def test_archive_dir_full_readonly_removed(envs, rnd, scale):
    e = envs(remote="dir", state_tmpfs="6M", conf="Interval 2s\n")
    e.start()
    w = e.init()
    w.start()
    cycles = scale.pick(1, 6)
    held = scale.pick(2, 20)
    for c in range(cycles):
        for phase in rnd.sample(["full", "readonly", "archive-removed"], 3):
            if phase == "full":
                f = fill(e.statedir)
                hold(e, held, "the archive directory is full")
                os.unlink(f)
            elif phase == "readonly":
                remount_ro(e.statedir)
                hold(e, held, "the archive directory is read-only")
                subprocess.run(["mount", "-o", "remount,rw", e.statedir], check=True)
            else:
                os.unlink(e.archive) if os.path.exists(e.archive) else None
                hold(e, held, "the archive was removed")
            tally(outages=1, faults=1)
            recovered(e, 20)
    no_leftovers(e)
    verdict(e, unasked_within=20)


@pytest.mark.root
def test_state_dir_removed(envs, rnd, scale):
    """The vault's whole state directory removed while it is unlocked: the
    daemon still holds the vault; the last state must still be saved and
    pushed (or the loss reported by the verdict)."""
    e = envs(remote="dir", conf="Interval 2s\n")
    e.start()
    w = e.init()
    w.start()
    e.identity()	# the verdict decrypts with it; the copy in the state dir goes
    time.sleep(rnd.uniform(1, 2))
    rmtree_under_writer(e.state)
    tally(faults=1, outages=1)
    hold(e, scale.pick(2, 20), "the state directory is gone")
    verdict(e, unasked_within=20)


def test_state_dir_unwritable_user(envs, rnd, scale):
    """User mode: the daemon's own state directory loses its write
    permission for a while, more than once."""
    e = envs(user_mode=True, remote="dir", conf="Interval 2s\n")
    e.start()
    w = e.init()
    w.start()
    for c in range(scale.pick(1, 10)):
        time.sleep(rnd.uniform(0.5, 2))
        os.chmod(e.state, 0o500)
        hold(e, scale.pick(2, 15), "the state directory is unwritable")
        os.chmod(e.state, 0o700)
        tally(faults=1, outages=1)
        recovered(e, 20)
    no_leftovers(e)
    verdict(e, unasked_within=20)


@pytest.mark.root
def test_vault_tmpfs_full(envs, rnd, scale):
    e = envs(remote="dir", mount_size="3M", conf="Interval 2s\n")
    e.start()
    w = e.init(big=True)
    w.delay = (0.0, 0.02)
    w.start()
    end = time.monotonic() + scale.pick(5, 60)
    fulls = 0
    # A busy machine writes slower: the scenario lasts until the vault has
    # filled at least once (up to 60 s more), whatever the bounded time.
    while time.monotonic() < end or (not fulls and time.monotonic() < end + 60):
        time.sleep(1)
        n = len([x for x in w.errors if "No space" in x])
        if n > fulls:
            tally(faults=n - fulls)
            fulls = n
        data = e.read_local()
        if data is not None:
            e.check_archive("local archive with the vault full", data)
    assert fulls, "the vault never filled up: %s" % w.errors[:3]
    tally(outages=1)
    verdict(e, unasked_within=20)
