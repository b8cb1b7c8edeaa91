"""The dir: remote, end to end: pushes through the sandboxed uploader into a
directory the parent opened, conflicts, history and its retention floor,
failures with backoff.  Everything the remote holds is checked with the real
age and tar, never with vaultsync's own code."""
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import MODES, wait_for
from test_vault import PASS, VaultEnv, _identity, populate, tree


def remote_env(factory, workdir, user_mode, extra="", conf="", mount_size=None):
    remote = os.path.join(workdir, "remote-v")
    e = VaultEnv(factory, workdir, user_mode,
                 vault_extra="  Remote dir:%s\n%s" % (remote, extra), extra_conf=conf)
    if mount_size is not None:
        with open(e.d.conf) as f:
            c = f.read()
        with open(e.d.conf, "w") as f:
            f.write(c.replace("MountSize 16M", "MountSize " + mount_size))
    e.remote = remote
    e.rlatest = os.path.join(remote, "v", "vault.tar.age")
    return e


@pytest.fixture(params=MODES)
def renv(request, daemon_factory, workdir):
    envs = []

    def make(extra="", conf=""):
        e = remote_env(daemon_factory, workdir, request.param, extra, conf)
        envs.append(e)
        return e
    yield make
    for e in envs:
        e.close()


def restore(venv, archive):
    """age -d -i ID ARCHIVE | tar -x, into a fresh directory."""
    out = tempfile.mkdtemp(prefix="vs-restore-")
    p1 = subprocess.Popen(["age", "-d", "-i", _identity(venv), archive], stdout=subprocess.PIPE)
    r = subprocess.run(["tar", "-x", "-p", "-C", out], stdin=p1.stdout, capture_output=True)
    p1.wait()
    assert p1.returncode == 0 and r.returncode == 0, r.stderr
    return out


def same_tree(venv, archive, want):
    out = restore(venv, archive)
    try:
        return tree(out) == want
    finally:
        shutil.rmtree(out, ignore_errors=True)


def history(e):
    d = os.path.join(e.remote, "v", "history")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def write_as_other_device(e, data):
    """Another vaultsync replacing the latest: a new file renamed over it."""
    tmp = os.path.join(os.path.dirname(e.rlatest), ".other-device")
    with open(tmp, "wb") as f:
        f.write(data)
    st = os.stat(e.rlatest)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, e.rlatest)


def test_push_round_trip(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v")
    assert "pushed" in r.stdout or "up to date" in r.stdout, r.stdout
    v = wait_for(lambda: (lambda v: v if v["pushed"] and v["state"] == "unlocked" else None)(
        e.vstate()), what="pushed and settled")
    assert v["remote_etag"] and v["last_ok_push_at"], v
    # The remote holds what standard tools restore, and the same identity.
    assert same_tree(e, e.rlatest, want)
    with open(os.path.join(e.remote, "v", "identity.age"), "rb") as a, \
            open(os.path.join(e.state, "identity.age"), "rb") as b:
        assert a.read() == b.read()
    # Nothing written there is readable by others.
    for dp, dns, fns in os.walk(e.remote):
        for n in dns + fns:
            assert stat.S_IMODE(os.stat(os.path.join(dp, n)).st_mode) & 0o077 == 0, n
    # Unchanged: no new upload.
    before = os.stat(e.rlatest)
    r = e.ctl("sync", "v")
    assert "up to date" in r.stdout, r.stdout
    after = os.stat(e.rlatest)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert e.d.stop() == 0


def test_conflict_keeps_the_other_device_version(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    wait_for(lambda: e.vstate()["pushed"], what="first push")
    theirs = b"age-encryption.org/v1 another device's archive, opaque to us\n" * 10
    write_as_other_device(e, theirs)
    with open(os.path.join(e.path, "token"), "ab") as f:
        f.write(b"more")
    if e.user_mode:
        pass
    else:
        os.chown(os.path.join(e.path, "token"), *e.owner)
    mine = tree(e.path)
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1 and "conflict" in r.stderr, (r.stdout, r.stderr)
    st = e.d.status()
    v = st["vaults"][0]
    assert v["state"] == "conflict" and not st["healthy"], v
    assert e.d.ctl("status").returncode == 1
    # Ours went to conflicts/, theirs is untouched.
    conflicts = os.listdir(os.path.join(e.remote, "v", "conflicts"))
    assert len(conflicts) == 1 and conflicts[0].endswith(".tar.age"), conflicts
    assert same_tree(e, os.path.join(e.remote, "v", "conflicts", conflicts[0]), mine)
    with open(e.rlatest, "rb") as f:
        assert f.read() == theirs
    # Further changes overwrite nothing either.
    open(os.path.join(e.path, "new"), "w").close()
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1
    with open(e.rlatest, "rb") as f:
        assert f.read() == theirs
    assert any("written by another device" in rec.get("msg", "") for rec in e.d.records())
    # push --force ends it: the remote latest is ours again.
    e.ctl("push", "v", "--force")
    v = wait_for(lambda: (lambda v: v if v["pushed"] and v["state"] == "unlocked" else None)(
        e.vstate()), what="pushed and settled")
    assert same_tree(e, e.rlatest, tree(e.path))
    assert e.d.stop() == 0


def push_new_version(e, i):
    with open(os.path.join(e.path, "version"), "w") as f:
        f.write("version %d\n" % i)
    e.ctl("sync", "v", check=False)
    r = e.ctl("push", "v")
    assert "pushed" in r.stdout, r.stdout
    time.sleep(1.05)	# history names have one-second resolution


def test_history_keep(renv):
    e = renv(extra="  HistoryKeep 3\n", conf="WatcherDebounce 60s\n")
    e.d.start()
    assert e.vstate()["history_count"] is None	# not listed yet
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    counts = []
    for i in range(5):
        push_new_version(e, i)
        counts.append(e.vstate()["history_count"])
    h = history(e)
    assert len(h) == 3, h
    # Status counts the copies as the push's own listing left them.  The
    # init's first push may or may not have made one before ours.
    assert counts[-2:] == [3, 3] and counts == sorted(counts), counts
    st = e.ctl("status")
    assert "3 history copies" in st.stdout, st.stdout
    # The newest three are the ones kept: the last one restores the last version.
    out = restore(e, os.path.join(e.remote, "v", "history", h[-1]))
    with open(os.path.join(out, "version")) as f:
        assert f.read() == "version 4\n"
    shutil.rmtree(out)
    r = e.ctl("history", "v")
    assert r.stdout.count(".tar.age") == 3 and "3 history version(s)" in r.stdout, r.stdout
    assert e.d.stop() == 0


def test_history_keep_zero_and_a_broken_config_never_prune(renv):
    e = renv(extra="  HistoryKeep 0\n")
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    for i in range(3):
        push_new_version(e, i)
    assert len(history(e)) == 3	# HistoryKeep below 1: never pruned
    # Keep 2, then a configuration that does not load: nothing is pruned on its word.
    with open(e.d.conf) as f:
        good = f.read().replace("HistoryKeep 0", "HistoryKeep 2")
    with open(e.d.conf, "w") as f:
        f.write(good + "NoSuchKeyword yes\n")
    r = e.d.ctl("reload", check=False)
    assert r.returncode == 64, r.stderr
    for i in range(3, 5):
        push_new_version(e, i)
    assert len(history(e)) == 5, history(e)
    assert e.vstate()["history_count"] == 5	# listed, not pruned
    with open(e.d.conf, "w") as f:
        f.write(good)
    assert e.d.ctl("reload").returncode == 0
    push_new_version(e, 5)
    assert len(history(e)) == 2, history(e)
    assert e.vstate()["history_count"] == 2
    assert e.d.stop() == 0


def test_failed_push_retries_with_backoff_and_survives_a_restart(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    e.ctl("sync", "v")
    wait_for(lambda: e.vstate()["pushed"], what="first push")
    vdir = os.path.join(e.remote, "v")
    os.chmod(vdir, 0)	# the uploader (not root) can no longer write there
    populate(e.path, e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1 and "push" in r.stderr, r.stderr
    v = wait_for(lambda: (lambda v: v if v["next_push_at"] and v["consecutive_failures"] >= 1
                          else None)(e.vstate()), what="a scheduled retry")
    assert v["state"] == "error" and "Permission denied" in v["last_error"], v
    assert not v["pushed"]
    wait_for(lambda: e.vstate()["consecutive_failures"] >= 2, timeout=15, what="a second attempt")
    # Backoff: a few attempts in several seconds, not a tight loop.
    time.sleep(3)
    fails = e.vstate()["consecutive_failures"]
    assert 2 <= fails <= 6, fails
    # Identical errors are not repeated in the log (tick records say it once per tick).
    errors = [r for r in e.d.records() if "Permission denied" in r.get("msg", "")
              and r.get("level") == "error" and "event" not in r]
    assert len(errors) <= 2, errors
    # Restart while it fails: the lag survives in the state files.
    assert e.d.stop() == 0
    os.chmod(vdir, 0o700)
    e.d.start()
    wait_for(lambda: e.vstate()["pushed"], timeout=20, what="push after restart")
    assert same_tree(e, e.rlatest, want)
    assert e.d.stop() == 0


def test_a_locked_vault_reads_locked_while_its_final_archive_is_pushed(renv):
    """The lock's reply says "locked", and so does status right after it,
    though the lock's final archive is still on its way to the remote: the
    state says whether the secrets are in RAM; the upload shows as not yet
    pushed, and completes."""
    e = renv(conf="WatcherDebounce 60s\n")
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    e.ctl("sync", "v")
    uploader = e.d.child_pids()["uploader"]
    os.kill(uploader, signal.SIGSTOP)
    try:
        with open(os.path.join(e.path, "last"), "wb") as f:
            f.write(os.urandom(1 << 20))
        if not e.user_mode:
            os.chown(os.path.join(e.path, "last"), *e.owner)
        r = e.ctl("lock", "v")
        assert "final save written" in r.stdout, r.stdout
        v = e.vstate()
        assert v["state"] == "locked" and not v["pushed"], v
    finally:
        os.kill(uploader, signal.SIGCONT)
    v = wait_for(lambda: (lambda v: v if v["pushed"] else None)(e.vstate()), timeout=30,
                 what="the final archive pushed")
    assert v["state"] == "locked", v
    with open(e.rlatest, "rb") as a, open(e.archive, "rb") as b:
        assert a.read() == b.read()
    assert e.d.stop() == 0


def test_kill_uploader_during_pushes(renv):
    """The uploader killed again and again while pushing: restarted, and the push completes."""
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    with open(os.path.join(e.path, "big"), "wb") as f:
        f.write(os.urandom(8 << 20))
    if not e.user_mode:
        os.chown(os.path.join(e.path, "big"), *e.owner)
    want = tree(e.path)
    for _ in range(3):
        pid = e.d.child_pids()["uploader"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: e.d.child_pids().get("uploader") not in (None, pid), what="restart")
    wait_for(lambda: e.vstate()["pushed"], timeout=30, what="push completes")
    assert same_tree(e, e.rlatest, want)
    assert [x for x in os.listdir(os.path.join(e.remote, "v")) if x.startswith(".")] == []
    assert e.d.stop() == 0


def other_device_archive(e, files):
    """What another device would have pushed: a tar of other files, encrypted
    with the real age to this vault's recipient."""
    src = tempfile.mkdtemp(prefix="vs-other-")
    for name, data in files.items():
        with open(os.path.join(src, name), "w") as f:
            f.write(data)
    with open(os.path.join(e.state, "recipient")) as f:
        rcpt = f.read().strip()
    tar = subprocess.run(["tar", "--format=pax", "-cf", "-", "-C", src] + sorted(files),
                         capture_output=True, check=True).stdout
    out = subprocess.run(["age", "-r", rcpt], input=tar, capture_output=True, check=True).stdout
    shutil.rmtree(src)
    return out


def test_pull_resolves_a_conflict(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    write_as_other_device(e, other_device_archive(e, {"theirs.txt": "from the laptop\n"}))
    open(os.path.join(e.path, "mine.txt"), "w").close()
    assert e.ctl("sync", "v", check=False).returncode == 1
    assert e.vstate()["state"] == "conflict"
    r = e.ctl("pull", "v", "--passphrase-file", e.passfile)
    assert "pulled the remote latest" in r.stdout, r.stdout
    # The unlocked vault now holds their version, and so does the local archive.
    wait_for(lambda: sorted(os.listdir(e.path)) == ["theirs.txt"], what="vault refreshed")
    with open(os.path.join(e.path, "theirs.txt")) as f:
        assert f.read() == "from the laptop\n"
    v = e.vstate()
    assert v["state"] != "conflict", v
    # A new change goes up over theirs: the ETag is theirs now, so no 412.
    with open(os.path.join(e.path, "after.txt"), "w") as f:
        f.write("x")
    if not e.user_mode:
        os.chown(os.path.join(e.path, "after.txt"), *e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v")
    wait_for(lambda: same_tree(e, e.rlatest, want), what="pushed over the pulled version")
    assert e.vstate()["state"] in ("unlocked", "dirty", "saving", "pushing")
    assert e.d.stop() == 0


def test_pull_version_restores_history(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    push_new_version(e, 1)
    first = history(e)[0]
    push_new_version(e, 2)
    e.ctl("lock", "v")
    r = e.ctl("pull", "v", "--version", first, "--passphrase-file", e.passfile)
    assert "history version" in r.stdout, r.stdout
    e.ctl("unlock", "v", "--passphrase-file", e.passfile)
    with open(os.path.join(e.path, "version")) as f:
        assert f.read() == "version 1\n"
    # The restored version becomes the remote latest.
    wait_for(lambda: e.vstate()["pushed"], what="restored version pushed")
    out = restore(e, e.rlatest)
    with open(os.path.join(out, "version")) as f:
        assert f.read() == "version 1\n"
    shutil.rmtree(out)
    bad = e.ctl("pull", "v", "--version", "../../etc/passwd", "--passphrase-file", e.passfile,
                check=False)
    assert bad.returncode == 1 and "not a history version" in bad.stderr, bad.stderr
    assert e.d.stop() == 0


def test_pull_of_a_damaged_remote_changes_nothing(renv):
    e = renv()
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    before = tree(e.path)
    with open(e.archive, "rb") as f:
        local = f.read()
    damaged = bytearray(local)
    damaged[len(damaged) // 2] ^= 0x10
    write_as_other_device(e, bytes(damaged))
    r = e.ctl("pull", "v", "--passphrase-file", e.passfile, check=False)
    assert r.returncode == 1, r.stdout
    assert tree(e.path) == before
    with open(e.archive, "rb") as f:
        assert f.read() == local
    assert not [n for n in os.listdir(e.state) if n.startswith(".pull")]
    assert e.d.stop() == 0
