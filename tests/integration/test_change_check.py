"""The change check before the archive: a tick first compares a stat scan of
the vault with what the last save saw and makes no archive when nothing
differs; a file rewritten with its size and mtime put back, or changed in the
same timestamp tick as the save's start, is still saved; with the watcher off
(Watcher polling) every change is still caught.  The watcher waits a minute
in the tests of the check itself, so that no watcher report decides for it."""
import os
import random
import threading
import time

import pytest

from conftest import IS_ROOT, MODES, wait_for
from test_remote_dir import remote_env, restore, same_tree
from test_statusd import api, get, validate
from test_sync_loop import check_envelope, ticks
from test_vault import tree


@pytest.fixture(params=MODES)
def cenv(request, daemon_factory, workdir):
    envs = []

    def make(conf="WatcherDebounce 60s\n", extra=""):
        e = remote_env(daemon_factory, workdir, request.param, extra, "Interval 1h\n" + conf)
        envs.append(e)
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        return e
    yield make
    for e in envs:
        e.close()


def put(e, rel, data, mtime_ns=None):
    p = os.path.join(e.path, rel)
    with open(p, "w") as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(p, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    if IS_ROOT and e.owner != (0, 0):
        os.lchown(p, *e.owner)


def sync(e):
    """vaultsyncctl sync, and the tick_end record of the tick that answered it."""
    n = len(ticks(e.d, "tick_end", "ctl"))
    e.ctl("sync", "v")
    rec = wait_for(lambda: ticks(e.d, "tick_end", "ctl")[n:], what="the sync's tick_end")[-1]
    check_envelope(rec)
    assert rec["outcome"] == "ok", rec
    return rec


def content(e, archive, rel):
    out = restore(e, archive)
    try:
        with open(os.path.join(out, rel)) as f:
            return f.read()
    finally:
        import shutil
        shutil.rmtree(out, ignore_errors=True)


def settled(e):
    """Saved and pushed, and settled: entries stamped within the timestamp
    granularity of a save's start count as changed (racy) at the next tick,
    and a sync that follows right after a write may start within it; a second
    save, started later, leaves nothing racy.  The first sync's record."""
    rec = sync(e)
    time.sleep(0.05)
    again = sync(e)
    assert again["unchanged"] or again["check"] == "racy", again
    return rec


def test_unchanged_tick_makes_no_archive(cenv):
    e = cenv()
    put(e, "token", "secret one\n")
    os.makedirs(os.path.join(e.path, "ssh", "keys"))
    put(e, "ssh/keys/id", "key\n")
    os.symlink("../token", os.path.join(e.path, "ssh", "link"))
    first = settled(e)
    assert first["sync"]["saved"] is True and first["unchanged"] is False
    assert first["check"] in ("no-state", "changed", "racy"), first
    a1, r1 = os.stat(e.archive), os.stat(e.rlatest)
    rec = sync(e)
    assert rec["unchanged"] is True and rec["check"] == "unchanged", rec
    assert rec["sync"]["saved"] is False and rec["sync"]["pushed"] is False
    assert isinstance(rec["scan_us"], int) and 0 < rec["scan_us"] < 5000000
    assert rec["sync"]["sha256"] == first["sync"]["sha256"]
    a2, r2 = os.stat(e.archive), os.stat(e.rlatest)
    assert (a1.st_ino, a1.st_mtime_ns, a1.st_size) == (a2.st_ino, a2.st_mtime_ns, a2.st_size)
    assert (r1.st_ino, r1.st_mtime_ns, r1.st_size) == (r2.st_ino, r2.st_mtime_ns, r2.st_size)
    assert [n for n in os.listdir(e.state) if n.startswith(".")] == []
    assert "unchanged" in e.ctl("sync", "v").stdout
    # The tick history says so too, in the schema's terms.
    url, auth = api(e.d)

    def last_tick():
        code, _, body = get(url + "v1/vaults/v/ticks?limit=1", headers=auth)
        assert code == 200
        t = __import__("json").loads(body)["ticks"]
        return t[0] if t and t[0]["tick_index"] >= rec["tick_index"] else None
    t = wait_for(last_tick, what="the unchanged tick in the history")
    assert t["unchanged"] is True and t["sync"]["saved"] is False and t["scan_us"] >= 0
    validate(t, "tick")
    # A reload forgets what the last save saw: the next tick saves in full.
    e.ctl("reload")
    rec = sync(e)
    assert rec["unchanged"] is False and rec["check"] == "no-state", rec
    assert rec["sync"]["saved"] is False	# the same contents: no new archive all the same
    assert sync(e)["unchanged"] is True
    assert e.d.stop() == 0


def test_same_size_and_mtime_rewrite_is_saved(cenv):
    e = cenv()
    put(e, "token", "AAAAAAAA\n")
    settled(e)
    st = os.lstat(os.path.join(e.path, "token"))
    assert sync(e)["unchanged"] is True
    # Rewritten in place, same size, and the mtime put back (touch -d): only ctime moves.
    put(e, "token", "BBBBBBBB\n", mtime_ns=st.st_mtime_ns)
    st2 = os.lstat(os.path.join(e.path, "token"))
    assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    rec = sync(e)
    assert rec["unchanged"] is False and rec["check"] in ("changed", "racy"), rec
    assert rec["sync"]["saved"] is True and rec["sync"]["pushed"] is True
    assert content(e, e.archive, "token") == "BBBBBBBB\n"
    assert content(e, e.rlatest, "token") == "BBBBBBBB\n"
    # Replaced by a rename of a file with the same size and mtime: a new inode.
    tmp = os.path.join(e.path, ".new")
    put(e, ".new", "CCCCCCCC\n", mtime_ns=st.st_mtime_ns)
    os.rename(tmp, os.path.join(e.path, "token"))
    rec = sync(e)
    assert rec["sync"]["saved"] is True, rec
    assert content(e, e.rlatest, "token") == "CCCCCCCC\n"
    assert e.d.stop() == 0


def test_change_in_the_same_tick_as_the_save_start_is_saved(cenv):
    """Writes of the same size, the mtime held fixed, run on while a sync's
    save starts and goes on; the next sync, with nothing written since, must
    hold the last of them: an entry stamped at or after that save's start
    (less the granularity) counts as changed."""
    e = cenv()
    p = os.path.join(e.path, "racy")
    put(e, "racy", "0" * 32)
    settled(e)
    mt = os.lstat(p).st_mtime_ns
    for i in range(8):
        stop = threading.Event()
        last = {}

        def writer():
            n = 0
            while not stop.is_set():
                data = "%02d%030d" % (i, n)
                fd = os.open(p, os.O_WRONLY)
                os.pwrite(fd, data.encode(), 0)
                os.close(fd)
                os.utime(p, ns=(mt, mt))
                last["data"] = data
                n += 1
        n0 = len(ticks(e.d, "tick_start", "ctl"))
        t = threading.Thread(target=writer)
        t.start()
        try:
            s = threading.Thread(target=lambda: e.ctl("sync", "v"))
            s.start()
            # Stop about when the save's scan begins: a few ms after its tick started.
            wait_for(lambda: len(ticks(e.d, "tick_start", "ctl")) > n0, interval=0.001,
                     what="the sync's tick")
            time.sleep(random.uniform(0, 0.01))
        finally:
            stop.set()
            t.join()
        s.join()
        rec = sync(e)		# nothing written since the last sync began
        assert content(e, e.archive, "racy") == last["data"], (i, rec)
    assert e.d.stop() == 0


def test_polling_mode_catches_every_change(cenv):
    """Watcher polling: no inotify watch at all, the polling scan every second."""
    e = cenv(conf="WatcherDebounce 100ms\n", extra="  Watcher polling\n")
    v = wait_for(lambda: (lambda v: v if v["watcher"]["mode"] == "polling" else None)(
        e.vstate()), what="polling mode")
    assert v["watcher"]["reason"] == "Watcher polling", v
    put(e, "a", "one\n")
    want = tree(e.path)
    wait_for(lambda: same_tree(e, e.rlatest, want), timeout=20, what="a new file pushed")
    st = os.lstat(os.path.join(e.path, "a"))
    time.sleep(0.05)

    def changes():
        yield lambda: put(e, "a", "ONE\n", mtime_ns=st.st_mtime_ns)	# same size, mtime back
        yield lambda: os.makedirs(os.path.join(e.path, "d1", "d2"))
        yield lambda: put(e, "d1/d2/deep", "deep\n")
        yield lambda: os.chmod(os.path.join(e.path, "d1/d2/deep"), 0o640)
        yield lambda: os.rename(os.path.join(e.path, "d1/d2/deep"),
                                os.path.join(e.path, "d1/moved"))
        yield lambda: os.symlink("a", os.path.join(e.path, "link"))
        yield lambda: os.unlink(os.path.join(e.path, "a"))
    for i, change in enumerate(changes()):
        change()
        if IS_ROOT and e.owner != (0, 0):
            for dp, dns, fns in os.walk(e.path):
                for n in dns + fns:
                    os.lchown(os.path.join(dp, n), *e.owner)
        want = tree(e.path)
        wait_for(lambda: same_tree(e, e.rlatest, want), timeout=20,
                 what="change %d pushed by the polling scan" % i)
    assert e.vstate()["watcher"]["mode"] == "polling"
    assert {r["trigger"] for r in ticks(e.d, "tick_end")} <= {"startup", "watcher", "ctl"}
    assert len(ticks(e.d, "tick_end", "watcher")) >= 7
    assert e.d.stop() == 0
