"""vaultsync-decoder: every archive read back is opened in a confined child.

The parent hands the decoder descriptors and the passphrase and gets entries
back; it never runs the age or tar parser itself.  These tests watch the
parent's system calls during an unlock, kill the decoder in the middle of
one, and hand it a crafted identity file and a crafted age header."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import IS_ROOT, binpath, wait_for
from test_vault import VaultEnv, populate, tree

STAGING = ".vaultsync-staging"


@pytest.fixture(params=["system", "user"] if IS_ROOT else ["user"])
def venv(request, daemon_factory, workdir):
    e = VaultEnv(daemon_factory, workdir, request.param == "user")
    yield e
    e.close()


def _decoders(parent):
    """Decoders the daemon with this pid runs now (never another daemon's)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/status" % p) as f:
                st = f.read()
        except OSError:
            continue
        if re.search(r"^Name:\s+vaultsync-deco", st, re.M) and \
                re.search(r"^PPid:\s+%d$" % parent, st, re.M):
            found.append(int(p))
    return found


def _locked_and_whole(venv, archive_bytes):
    assert venv.vstate()["state"] == "locked"
    assert open(venv.archive, "rb").read() == archive_bytes
    if venv.user_mode:
        assert os.listdir(venv.path) == []
    else:
        assert not os.path.ismount(venv.path)


@pytest.mark.root
def test_parent_never_reads_the_archive(daemon_factory, workdir):
    """strace -f on the parent through an unlock: the archive's bytes are read
    by the decoder alone; the parent opens the file and passes the fd."""
    venv = VaultEnv(daemon_factory, workdir, False)
    try:
        venv.d.start()
        venv.ctl("init", "v", "--passphrase-file", venv.passfile)
        populate(venv.path, venv.owner)
        want = tree(venv.path)
        venv.ctl("lock", "v")
        parent = venv.d.status()["daemon"]["pid"]
        trace = os.path.join(workdir, "unlock.strace")
        st = subprocess.Popen(["strace", "-f", "-qq", "-y", "-p", str(parent), "-o", trace,
                               "-e", "trace=execve,read,pread64,readv,preadv,preadv2,mmap,"
                               "sendfile,splice,copy_file_range"])
        try:
            wait_for(lambda: os.path.exists(trace) and
                     "TracerPid:\t%d" % st.pid in open("/proc/%d/status" % parent).read(),
                     timeout=20, what="strace attached")
            venv.ctl("unlock", "v", "--passphrase-file", venv.passfile)
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(20)
        assert tree(venv.path) == want
        decoders, readers = set(), set()
        for line in open(trace):
            m = re.match(r"(\d+)\s+(\w+)\((.*)", line)
            if not m:
                continue
            pid, call, args = int(m.group(1)), m.group(2), m.group(3)
            if call == "execve" and "vaultsync-decoder" in args:
                decoders.add(pid)
            elif call != "execve" and "vault.tar.age>" in args.split(",")[0 if call != "mmap"
                                                                           else 4]:
                readers.add(pid)
        assert decoders, "no decoder ran during the unlock"
        assert readers, "control: the decoder must be seen reading the archive"
        assert readers <= decoders, ("the archive was read by a process that is not a "
                                     "decoder", readers, decoders)
    finally:
        venv.close()


def test_decoder_killed_mid_unlock(venv):
    """kill -9 of the decoder while its entries are being written: the unlock
    fails cleanly, the vault and the archive are as they were, and the next
    unlock works."""
    venv.d.start()
    venv.ctl("init", "v", "--passphrase-file", venv.passfile)
    populate(venv.path, venv.owner)
    sub = os.path.join(venv.path, "many")
    os.mkdir(sub)
    for i in range(3000):
        with open(os.path.join(sub, "f%04d" % i), "wb") as f:
            f.write(os.urandom(2048))
    if venv.owner != (0, 0):
        for dp, dn, fn in os.walk(sub):
            for n in [dp] + [os.path.join(dp, x) for x in fn]:
                os.chown(n, *venv.owner)
    want = tree(venv.path)
    venv.ctl("lock", "v")
    good = open(venv.archive, "rb").read()
    parent = venv.d.status()["daemon"]["pid"]
    staging = os.path.join(venv.path, STAGING)
    killed_mid = False
    for attempt in range(6):
        ident = venv.d.ident
        p = subprocess.Popen(ident.wrap([binpath("vaultsyncctl"), "-s", venv.d.sock, "unlock",
                                         "v", "--passphrase-file", venv.passfile]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=ident.env())
        victim = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if os.path.isdir(staging):
                ds = _decoders(parent)
                if ds:
                    victim = ds[0]
                    try:
                        confined = open("/proc/%d/status" % victim).read()
                    except OSError:
                        confined = None
                    os.kill(victim, signal.SIGKILL)
                    break
            time.sleep(0.002)
        out, err = p.communicate(timeout=60)
        if victim is not None and p.returncode != 0:
            killed_mid = True
            if confined is not None:	# the decoder runs in the children's sandbox
                assert re.search(r"^Seccomp:\s+2$", confined, re.M), confined
                assert re.search(r"^NoNewPrivs:\s+1$", confined, re.M), confined
                assert re.search(r"^CapEff:\s+0+$", confined, re.M), confined
                if not venv.user_mode:
                    assert not re.search(r"^Uid:\s+0\s", confined, re.M), confined
            assert p.returncode == 1, (out, err)
            assert "decoder" in err and "left as it was" in err, err
            _locked_and_whole(venv, good)
            assert not os.path.exists(staging)
            break
        # The unlock won the race: lock again and try once more.
        assert p.returncode == 0, (out, err)
        venv.ctl("lock", "v")
        good = open(venv.archive, "rb").read()
    assert killed_mid, "the decoder was never caught in the middle of an unlock"
    assert venv.d.status()["daemon"]["pid"] == parent
    venv.ctl("unlock", "v", "--passphrase-file", venv.passfile)
    assert tree(venv.path) == want


def _identity_with_logn(venv, logn):
    """identity.age with its scrypt work factor rewritten (its MAC no longer
    matches; the cap must refuse it before any work is done)."""
    path = os.path.join(venv.state, "identity.age")
    data = open(path, "rb").read()
    new, n = re.subn(rb"^(-> scrypt \S+) \d+$", rb"\1 %d" % logn, data, count=1, flags=re.M)
    assert n == 1, data[:200]
    with open(path, "wb") as f:
        f.write(new)
    return data


def test_crafted_scrypt_work_factor_is_refused_at_once(venv):
    venv.d.start()
    venv.ctl("init", "v", "--passphrase-file", venv.passfile)
    populate(venv.path, venv.owner)
    venv.ctl("lock", "v")
    good = open(venv.archive, "rb").read()
    parent = venv.d.status()["daemon"]["pid"]
    orig = _identity_with_logn(venv, 40)
    t0 = time.monotonic()
    r = venv.ctl("unlock", "v", "--passphrase-file", venv.passfile, check=False)
    took = time.monotonic() - t0
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "work factor 2^40 exceeds the limit" in r.stderr, r.stderr
    assert took < 30, took
    _locked_and_whole(venv, good)
    assert venv.d.status()["daemon"]["pid"] == parent
    with open(os.path.join(venv.state, "identity.age"), "wb") as f:
        f.write(orig)
    venv.ctl("unlock", "v", "--passphrase-file", venv.passfile)


@pytest.mark.parametrize("name,header,msg", [
    ("not-age", b"this is not an age file\n" * 10, "age"),
    ("bad-stanza", b"age-encryption.org/v1\n-> X25519\n--- AAAA\n" + b"\0" * 64, "age"),
    ("huge-stanza", b"age-encryption.org/v1\n-> x " + b"A" * 100000 + b"\n", "age"),
])
def test_crafted_age_header_is_refused(venv, name, header, msg):
    venv.d.start()
    venv.ctl("init", "v", "--passphrase-file", venv.passfile)
    populate(venv.path, venv.owner)
    venv.ctl("lock", "v")
    parent = venv.d.status()["daemon"]["pid"]
    with open(venv.archive, "wb") as f:
        f.write(header)
    r = venv.ctl("unlock", "v", "--passphrase-file", venv.passfile, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert msg in r.stderr and "left as it was" in r.stderr, r.stderr
    _locked_and_whole(venv, header)
    assert venv.d.status()["daemon"]["pid"] == parent
