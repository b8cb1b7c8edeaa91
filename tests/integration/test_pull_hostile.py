"""vaultsyncctl pull against a hostile or broken remote latest.

Anyone who can write to the remote and knows the vault's public recipient can
put there an archive that decrypts perfectly.  A pull must unpack it under
exactly the rules an unlock applies before it replaces anything: otherwise
the only local copy of the real vault is swapped for one that never unlocks.
Each case is a tar (hostile, or not a whole tar at all) encrypted with the
real age to the vault's recipient.  The vault is locked while it is pulled;
the pull must fail and say why, the local archive must be byte for byte what
it was, and the next unlock must give back the original tree."""
import io
import os
import secrets
import subprocess
import tarfile

import pytest

from conftest import MODES, wait_for
from test_remote_dir import other_device_archive, remote_env, write_as_other_device
from test_vault import populate, tree

# Slow (21 hostile archives, an scrypt each): the sanitizer pass of make check leaves it out.
pytestmark = pytest.mark.slow

MIB = 1 << 20
# The good entry every hostile tar starts with: found anywhere, it is plaintext left behind.
MARKER = "vs-pull-marker-" + secrets.token_hex(6)


def _tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (TarInfo, data or None); MARKER first so that there is
    something good to extract before the bad entry."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        good = tarfile.TarInfo(MARKER)
        good.size = 3
        t.addfile(good, io.BytesIO(b"ok\n"))
        for ti, data in entries:
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def _entry(name, kind="file", link=None, mode=0o644, data=b"pwned\n"):
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    ti.mtime = 1700000000
    if kind == "file":
        return ti, data
    ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
               "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    if link is not None:
        ti.linkname = link
    if kind in ("chr", "blk"):
        ti.devmajor, ti.devminor = 1, 3
    return ti, None


def _huge_size_field():
    """A header that claims a 100 GB file, followed by a little data and the
    end blocks: the stream is small, the promise is not."""
    ti = tarfile.TarInfo("huge")
    ti.size = 100 << 30
    ti.mtime = 1700000000
    ok = tarfile.TarInfo(MARKER)
    ok.size = 3
    return (ok.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"ok\n".ljust(512, b"\0") +
            ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + b"x" * 4096 +
            b"\0" * 1024)


def _truncated():
    whole = _tar([_entry("data", data=b"0123456789abcdef" * 4096)])
    return whole[:len(whole) // 2]


# (id, tar bytes builder, what the error must say).  Limits assume MountSize 16M.
HOSTILE = [
    ("dotdot", lambda: _tar([_entry("../escape")]), "'..' component"),
    ("absolute", lambda: _tar([_entry("/tmp/vs-pull-escape")]), "absolute path"),
    ("inner-dotdot", lambda: _tar([_entry("a/../../escape")]), "'..' component"),
    ("hardlink", lambda: _tar([_entry("h", "hardlink", MARKER)]), "hard links"),
    ("hardlink-abs", lambda: _tar([_entry("h", "hardlink", "/etc/shadow")]), "hard links"),
    ("chardev", lambda: _tar([_entry("null", "chr", mode=0o666)]), "character devices"),
    ("blockdev", lambda: _tar([_entry("sda", "blk", mode=0o660)]), "block devices"),
    ("fifo", lambda: _tar([_entry("pipe", "fifo")]), "fifos are not allowed"),
    ("setuid", lambda: _tar([_entry("suid", mode=0o4755)]), "setuid/setgid/sticky"),
    ("sticky-dir", lambda: _tar([_entry("tmp", "dir", mode=0o1777)]), "setuid/setgid/sticky"),
    ("symlink-out", lambda: _tar([_entry("sym", "symlink", "../../../etc/passwd")]),
     "symlink target leaves the archive"),
    ("symlink-abs", lambda: _tar([_entry("sym", "symlink", "/etc/passwd")]),
     "absolute symlink target"),
    ("symlink-dot-dotdot", lambda: _tar([_entry("s", "symlink", "."),
                                         _entry("t", "symlink", "s/..")]),
     "symlink target leaves the archive"),
    ("write-through-symlink", lambda: _tar([_entry("sub", "dir", mode=0o755),
                                            _entry("l", "symlink", "sub"),
                                            _entry("l/x")]),
     "symlink or not a directory"),
    ("name-4096", lambda: _tar([_entry("/".join(["n" * 200] * 20) + "/" + "n" * 95)]),
     "path longer than 4095 bytes"),
    ("component-256", lambda: _tar([_entry("c" * 256)]), "longer than 255 bytes"),
    ("depth-300", lambda: _tar([_entry("/".join(["d"] * 300) + "/f")]), "deeper than 64"),
    ("size-100G", _huge_size_field, "over the per-file limit"),
    ("over-mountsize", lambda: _tar([_entry("big", data=b"x" * (17 * MIB))]),
     "over the per-file limit"),
    ("truncated", _truncated, "Truncated tar archive"),
    ("not-a-tar", lambda: b"this is not a tar archive, just text\n" * 300, "tar: "),
]
assert len(HOSTILE) == 21 and len({h[0] for h in HOSTILE}) == 21


def encrypt(e, data):
    with open(os.path.join(e.state, "recipient")) as f:
        rcpt = f.read().strip()
    r = subprocess.run(["age", "-r", rcpt], input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def plaintext_left(e):
    """Anything extracted from a hostile tar that outlived the pull: the
    marker entry, searched for in the RAM places a daemon could stage in
    (a private tmpfs has no path, and is gone when the daemon closes it)."""
    found = []
    for top in ("/dev/shm", "/run", e.d.ident.runtime, os.path.dirname(e.path), e.state):
        for dp, dns, fns in os.walk(top):
            if MARKER in dns + fns:
                found.append(os.path.join(dp, MARKER))
            if dp.count(os.sep) - top.count(os.sep) >= 3:
                dns[:] = []
    return found


def is_locked(e):
    if e.user_mode:
        return os.listdir(e.path) == []
    return not os.path.ismount(e.path)


def local(e):
    with open(e.archive, "rb") as f:
        return f.read()


def prepared(e):
    """An initialised vault with a tree, pushed, then locked: (tree, archive bytes)."""
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    wait_for(lambda: e.vstate()["pushed"], what="first push")
    want = tree(e.path)
    e.ctl("lock", "v")
    return want, local(e)


def refused_pull(e, data, want_msg, good, unlocked_tree=None):
    """Put data as the remote latest and pull: every failure found, as strings."""
    bad = []
    e.put(data)
    r = e.ctl("pull", "v", "--passphrase-file", e.passfile, check=False)
    if r.returncode != 1:
        bad.append("pull exited %d: %s%s" % (r.returncode, r.stdout.strip(), r.stderr.strip()))
    elif want_msg not in r.stderr or "left as" not in r.stderr:
        bad.append("unclear error: %r (wanted %r)" % (r.stderr.strip(), want_msg))
    if local(e) != good:
        bad.append("the local archive changed")
    if [n for n in os.listdir(e.state) if n.startswith(".pull")]:
        bad.append("download left in the state dir: %s" % os.listdir(e.state))
    if plaintext_left(e):
        bad.append("staging left behind: %s" % plaintext_left(e))
    for p in ("/tmp/vs-pull-escape", os.path.join(os.path.dirname(e.path), "escape")):
        if os.path.lexists(p):
            bad.append("created %s" % p)
    if unlocked_tree is not None:
        if tree(e.path) != unlocked_tree:
            bad.append("the unlocked vault's contents changed")
    elif not is_locked(e):
        bad.append("the vault is no longer locked")
    return bad


def unlocks_to(e, want, good):
    r = e.ctl("unlock", "v", "--passphrase-file", e.passfile, check=False)
    if r.returncode != 0:
        return ["unlock after the pull failed: %s" % r.stderr.strip()]
    bad = [] if tree(e.path) == want else ["unlock restored a different tree"]
    e.ctl("lock", "v")
    if local(e) != good:
        bad.append("unlock and lock rewrote the archive")
    return bad


def replaced(e, want, good):
    """After a pull that should have been refused: what the next unlock makes
    of the archive it left, then the good archive back for the next case."""
    if local(e) == good:
        return []
    bad = unlocks_to(e, want, good)
    with open(e.archive, "wb") as f:
        f.write(good)
    return bad


@pytest.fixture(params=MODES)
def pull_env(request, daemon_factory, workdir):
    e = remote_env(daemon_factory, workdir, request.param)
    e.put = lambda data: write_as_other_device(e, data)
    yield e
    e.close()


def test_hostile_remote_latest_never_replaces_the_local_archive(pull_env):
    e = pull_env
    want, good = prepared(e)
    failures = {}
    for name, build, msg in HOSTILE:
        bad = refused_pull(e, encrypt(e, build()), msg, good)
        if bad:
            failures[name] = bad + replaced(e, want, good)
    assert not failures, "\n".join("%s: %s" % (k, "; ".join(v)) for k, v in failures.items())
    # Unlock reads only the archive and identity.age: with the archive the same
    # bytes after every case, one unlock answers for all of them.
    assert unlocks_to(e, want, good) == []
    assert e.d.stop() == 0


def test_hostile_pull_into_an_unlocked_vault_changes_nothing(pull_env):
    e = pull_env
    want, good = prepared(e)
    e.ctl("unlock", "v", "--passphrase-file", e.passfile)
    failures = {}
    for name, build, msg in [h for h in HOSTILE if h[0] in ("dotdot", "symlink-dot-dotdot",
                                                            "size-100G", "truncated")]:
        bad = refused_pull(e, encrypt(e, build()), msg, good, unlocked_tree=want)
        if bad:
            failures[name] = bad
    assert not failures, failures
    assert e.d.stop() == 0


def test_good_remote_latest_is_pulled_into_a_locked_vault(pull_env):
    e = pull_env
    prepared(e)
    theirs = other_device_archive(e, {"theirs.txt": "from the laptop\n", "b": "bee\n"})
    e.put(theirs)
    r = e.ctl("pull", "v", "--passphrase-file", e.passfile)
    assert "pulled the remote latest" in r.stdout, r.stdout
    assert local(e) == theirs
    assert is_locked(e)
    assert [n for n in os.listdir(e.state) if n.startswith(".pull")] == []
    e.ctl("unlock", "v", "--passphrase-file", e.passfile)
    assert sorted(os.listdir(e.path)) == ["b", "theirs.txt"]
    with open(os.path.join(e.path, "theirs.txt")) as f:
        assert f.read() == "from the laptop\n"
    assert e.d.stop() == 0


S3_CASES = ("dotdot", "size-100G", "not-a-tar")


@pytest.fixture(params=MODES)
def s3_pull_env(request, daemon_factory, workdir, s3):
    from test_remote_s3 import S3Env
    env = S3Env(daemon_factory, workdir, request.param, s3)
    e = env.e
    e.put = lambda data: s3.put(env.key, data)
    yield e
    e.close()


def test_hostile_s3_latest_never_replaces_the_local_archive(s3_pull_env):
    e = s3_pull_env
    want, good = prepared(e)
    failures = {}
    for name, build, msg in [h for h in HOSTILE if h[0] in S3_CASES]:
        bad = refused_pull(e, encrypt(e, build()), msg, good)
        if bad:
            failures[name] = bad + replaced(e, want, good)
    assert not failures, failures
    assert unlocks_to(e, want, good) == []
    # And a good one still comes through.
    theirs = other_device_archive(e, {"theirs.txt": "from the laptop\n"})
    e.put(theirs)
    e.ctl("pull", "v", "--passphrase-file", e.passfile)
    assert local(e) == theirs
    e.ctl("unlock", "v", "--passphrase-file", e.passfile)
    assert sorted(os.listdir(e.path)) == ["theirs.txt"]
    assert e.d.stop() == 0
