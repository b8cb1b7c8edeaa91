"""The restore drill (vaultsyncctl verify, VerifyInterval) against a dir:
remote and a real S3 server, in system and user mode: a remote that holds
what was encrypted here verifies; one altered by another client (same size,
one byte), truncated or replaced by something that is not age is reported
in the answer, status and the log, and nothing on either side is
overwritten."""
import os
import subprocess
import time

import pytest

from conftest import MODES, binpath, wait_for
from test_remote_dir import remote_env
from test_remote_s3 import S3Env
from test_vault import populate

# Slow (the drill timer and downloads): the sanitizer pass of make check leaves it out.
pytestmark = pytest.mark.slow


class Drill:
    """A vault with a remote, and the remote as another client sees it."""

    def __init__(self, kind, user_mode, factory, workdir, s3=None, extra="", conf=""):
        self.kind = kind
        if kind == "dir":
            self.e = remote_env(factory, workdir, user_mode, extra, conf)
        else:
            self.env = S3Env(factory, workdir, user_mode, s3, extra=extra, conf=conf)
            self.e = self.env.e
            self.s3 = s3
        self.d = self.e.d

    def _path(self, rel):
        return os.path.join(self.e.remote, "v", rel)

    def read(self, rel="vault.tar.age"):
        if self.kind == "dir":
            with open(self._path(rel), "rb") as f:
                return f.read()
        return self.s3.get(self.env.prefix + "/v/" + rel)

    def write(self, data, rel="vault.tar.age"):
        """Another client rewrites the object (a dir: remote's file in place)."""
        if self.kind == "dir":
            with open(self._path(rel), "r+b") as f:
                f.write(data)
                f.truncate(len(data))
        else:
            self.s3.put(self.env.prefix + "/v/" + rel, data)

    def history(self):
        if self.kind == "dir":
            d = self._path("history")
            return sorted("history/" + n for n in os.listdir(d)) if os.path.isdir(d) else []
        p = self.env.prefix + "/v/"
        return sorted(k[len(p):] for k in self.s3.list_keys(p + "history/"))

    def local(self):
        with open(self.e.archive, "rb") as f:
            return f.read()

    def verify(self):
        return self.d.ctl("verify", "v", check=False, timeout=120)

    def vault(self):
        return self.d.status()["vaults"][0]

    def records(self, outcome=None):
        return [r for r in self.d.records() if r.get("event") == "verify" and
                (outcome is None or r.get("outcome") == outcome)]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture(params=["dir", "s3"])
def drill(request, mode, daemon_factory, workdir):
    made = []
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None

    def make(extra="", conf=""):
        dr = Drill(request.param, mode, daemon_factory, workdir, s3, extra, conf)
        made.append(dr)
        return dr
    yield make
    for dr in made:
        dr.d.stop()
        if not dr.e.user_mode and os.path.ismount(dr.e.path):
            subprocess.run(["umount", "-l", dr.e.path])
        dr.e.cleanup()


def synced(dr, history=True):
    """Init, some secrets, a sync and (for a history copy) a push; settled."""
    e = dr.e
    dr.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    if history:
        e.ctl("push", "v")
    wait_for(lambda: (lambda v: v if v["pushed"] and v["state"] == "unlocked" else None)(
        dr.vault()), what="pushed and settled")
    if history:
        wait_for(lambda: dr.history(), what="a history copy")
    return e


def flip_one_byte(data, at=None):
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:], at


def test_verify_matches_then_detects_one_altered_byte(drill):
    dr = drill(conf="HeadPollInterval 1h\nHeadPollMaxInterval 1h\n")
    synced(dr)
    assert dr.vault()["verify"] is None
    # (a) What the remote holds is what was encrypted here: both objects compared.
    r = dr.verify()
    assert r.returncode == 0, (r.stdout, r.stderr, dr.d.read_log()[-3000:])
    assert "verify ok" in r.stdout, r.stdout
    assert "vault.tar.age matches the local archive byte for byte" in r.stdout, r.stdout
    newest = dr.history()[-1]
    assert "%s matches the local archive byte for byte" % newest in r.stdout, r.stdout
    assert "well-formed age file" in r.stdout
    v = dr.vault()
    assert v["verify"]["outcome"] == "ok" and v["verify"]["runs"] == 1, v["verify"]
    assert dr.d.status()["healthy"]
    rec = dr.records("ok")[-1]
    assert rec["schema_version"] == 1 and rec["vault"] == "v" and rec["trigger"] == "ctl"
    assert rec["latest"]["compared"] and rec["latest"]["outcome"] == "ok", rec
    assert rec["history"]["key"] == newest and rec["history"]["compared"], rec
    assert rec["time"] and rec["level"] == "info" and "verify ok" in rec["msg"]

    # (b) Another client alters one byte of the remote latest, same size.
    local_before = dr.local()
    altered, at = flip_one_byte(dr.read())
    dr.write(altered)
    assert len(dr.read()) == len(local_before)
    r = dr.verify()
    assert r.returncode == 1, (r.stdout, r.stderr)
    msg = r.stdout + r.stderr
    assert "MISMATCH" in msg and "differs from the local archive at byte %d" % at in msg, msg
    assert "nothing was overwritten" in msg
    st = dr.d.status()
    v = st["vaults"][0]
    assert v["verify"]["outcome"] == "mismatch", v
    assert "differs from the local archive at byte %d" % at in v["verify"]["message"]
    assert v["verify"]["mismatches"] == 1 and v["verify"]["runs"] == 2
    assert not st["healthy"] and "verify" in (v["last_error"] or ""), v
    assert dr.d.ctl("status").returncode == 1
    text = dr.d.ctl("status", "v").stdout
    assert "verify MISMATCH at " in text, text
    rec = dr.records("mismatch")[-1]
    assert rec["level"] == "error" and rec["latest"]["outcome"] == "mismatch", rec
    assert rec["history"]["outcome"] == "ok", rec
    # An alarm, never a repair: both sides are as they were.
    time.sleep(1)
    assert dr.read() == altered
    assert dr.local() == local_before
    # Once the remote holds our bytes again, the next drill clears the alarm.
    dr.write(local_before)
    r = dr.verify()
    assert r.returncode == 0, (r.stdout, r.stderr)
    st = dr.d.status()
    assert st["vaults"][0]["verify"]["outcome"] == "ok" and st["healthy"], st["vaults"][0]
    assert dr.d.stop() == 0


def test_verify_interval_detects_an_alteration_without_a_command(drill):
    dr = drill(extra="  VerifyInterval 2s\n", conf="HeadPollInterval 1h\nHeadPollMaxInterval 1h\n")
    synced(dr, history=False)
    out = subprocess.run(dr.d.ident.wrap([binpath("vaultsyncd-dev"), "-T", "-f", dr.d.conf] +
                                         (["--user"] if dr.e.user_mode else [])),
                         capture_output=True, text=True, env=dr.d.ident.env())
    assert "\n\tVerifyInterval 2s\n" in out.stdout, out.stdout + out.stderr
    # The timer runs on its own: a drill that matched.
    wait_for(lambda: dr.records("ok"), timeout=15, what="an interval drill")
    assert dr.records("ok")[-1]["trigger"] == "interval"
    assert dr.records("ok")[-1]["history"]["outcome"] == "skipped"
    local_before = dr.local()
    altered, at = flip_one_byte(dr.read(), 200)
    dr.write(altered)
    t0 = time.monotonic()  # the object is altered from here on (aws cp takes a while)
    wait_for(lambda: dr.records("mismatch"), timeout=30, interval=0.05,
             what="the interval drill to see the alteration")
    took = time.monotonic() - t0
    print("\nalteration detected after %.2fs (VerifyInterval 2s, %s, %s mode)" % (
        took, dr.kind, "user" if dr.e.user_mode else "system"))
    # One interval, plus the drill in flight when it landed and the one that sees it.
    drills = [r["time"] for r in dr.records()]
    assert took < 2 + 6, (took, drills[-6:])
    rec = dr.records("mismatch")[0]
    assert rec["trigger"] == "interval"
    v = dr.vault()
    assert v["verify"]["outcome"] == "mismatch", v
    assert "at byte %d" % at in v["verify"]["message"], v
    assert not dr.d.status()["healthy"]
    assert dr.read() == altered and dr.local() == local_before
    assert dr.d.stop() == 0


def test_truncated_and_foreign_objects(drill):
    dr = drill(conf="HeadPollInterval 1h\nHeadPollMaxInterval 1h\n")
    synced(dr)
    good = dr.read()
    newest = dr.history()[-1]
    # Truncated latest: a mismatch by size, and the scan says what is wrong.
    dr.write(good[:len(good) - 5])
    r = dr.verify()
    assert r.returncode == 1, r.stdout
    assert "%d bytes on the remote, %d in the local archive" % (len(good) - 5, len(good)) \
        in r.stdout + r.stderr, r.stdout + r.stderr
    # Something that is not age, of the same size.
    foreign = (b"these are not the bytes you are looking for\n" * (len(good) // 40 + 1))
    dr.write(foreign[:len(good)])
    r = dr.verify()
    msg = r.stdout + r.stderr
    assert r.returncode == 1 and "not a well-formed age file" in msg, msg
    assert dr.vault()["verify"]["outcome"] == "mismatch"
    # A broken history copy is found as well.
    dr.write(good)
    hist = dr.read(newest)
    dr.write(hist[:40], newest)
    r = dr.verify()
    msg = r.stdout + r.stderr
    assert r.returncode == 1 and newest in msg and "MISMATCH" in msg, msg
    assert "vault.tar.age matches the local archive" in msg, msg
    rec = dr.records("mismatch")[-1]
    assert rec["latest"]["outcome"] == "ok" and rec["history"]["outcome"] == "mismatch", rec
    # The daemon carries on, and wrote nothing.
    assert dr.d.proc.poll() is None
    assert dr.read() == good and dr.read(newest) == hist[:40]
    st = dr.d.status()
    assert all(c["state"] == "running" for c in st["children"] if c["pid"]), st["children"]
    assert dr.d.stop() == 0


def test_verify_refusals(drill):
    dr = drill()
    dr.d.start()
    # Nothing saved yet: not verified, and said so.
    r = dr.verify()
    assert r.returncode == 1 and "nothing saved here yet" in r.stdout + r.stderr, r.stdout
    assert dr.vault()["verify"]["outcome"] == "skipped"
    assert dr.d.status()["healthy"]
    r = dr.d.ctl("verify", "nope", check=False)
    assert r.returncode == 1 and "no such vault" in r.stderr + r.stdout
    r = dr.d.ctl("verify", "v", "--decrypt", check=False)
    assert r.returncode == 64 and "not available yet" in r.stderr, r.stderr


@pytest.mark.root
def test_the_drill_parses_what_it_fetched_in_a_decoder(daemon_factory, workdir):
    """The structure of what the drill downloads is read by a decoder child,
    one per object: the parent execs it and passes the fd, and the verdict
    names what the scan found."""
    import re
    import signal
    dr = Drill("dir", False, daemon_factory, workdir,
               conf="HeadPollInterval 1h\nHeadPollMaxInterval 1h\n")
    try:
        synced(dr)
        parent = dr.d.status()["daemon"]["pid"]
        trace = os.path.join(workdir, "verify.strace")
        st = subprocess.Popen(["strace", "-f", "-qq", "-p", str(parent), "-o", trace,
                               "-e", "trace=execve"])
        try:
            wait_for(lambda: os.path.exists(trace) and
                     "TracerPid:\t%d" % st.pid in open("/proc/%d/status" % parent).read(),
                     timeout=20, what="strace attached")
            r = dr.verify()
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(20)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "a well-formed age file, 1 recipient stanza(s)" in r.stdout, r.stdout
        decoders = [l for l in open(trace) if re.search(r'execve\("[^"]*vaultsync-decoder"', l)]
        assert len(decoders) == 2, decoders	# the latest and the newest history copy
    finally:
        dr.d.stop()
        if os.path.ismount(dr.e.path):
            subprocess.run(["umount", "-l", dr.e.path])
        dr.e.cleanup()
