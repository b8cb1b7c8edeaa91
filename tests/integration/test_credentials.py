"""The credential boundary: only the uploader opens or holds the S3 secret."""
import os
import re
import secrets
import signal
import subprocess

import pytest

from conftest import MODES, wait_for


def scan_memory(pid, needle):
    """True if needle is anywhere in the readable memory of pid.  Regions over
    1 GiB are sanitizer shadow reservations, never heap or stack: skipped."""
    step = 1 << 22
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if perms[0] != "r" or "[vvar]" in line or "[vsyscall]" in line:
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > 1 << 30:
                continue
            tail = b""
            for off in range(lo, hi, step):
                try:
                    mem.seek(off)
                    chunk = mem.read(min(step, hi - off))
                except (OSError, ValueError):
                    break
                if needle in tail + chunk:
                    return True
                tail = chunk[-len(needle):]
    return False


def s3_daemon(daemon_factory, workdir, user_mode, secret):
    creds = os.path.join(workdir, "s3.env")
    with open(creds, "w") as f:
        f.write("# test credentials\nexport AWS_ACCESS_KEY_ID=AKIATESTKEY0000WXYZ\n"
                "AWS_SECRET_ACCESS_KEY='%s'\nAWS_CREDENTIAL_EXPIRATION=2099-01-01T00:00:00Z\n"
                % secret)
    os.chmod(creds, 0o600)
    d = daemon_factory(user_mode=user_mode, extra_conf="CredentialsFile %s\n" % creds,
                       vault_conf="Vault s3v\n  Path %s/vault\n  Mount no\n"
                       "  Remote s3://test-bucket/vaults\n  Endpoint http://127.0.0.1:9\n"
                       % workdir)
    return d, creds


@pytest.mark.parametrize("user_mode", MODES)
def test_only_uploader_opens_and_holds_the_secret(daemon_factory, workdir, user_mode):
    secret = "S3cr3t" + secrets.token_hex(17)
    d, creds = s3_daemon(daemon_factory, workdir, user_mode, secret)
    trace = os.path.join(workdir, "strace.txt")
    d.start(wait=False, prefix=["strace", "-f", "-qq", "-e", "trace=open,openat,openat2",
                                "-o", trace])
    st = d.wait_ready()
    pids = {c["name"]: c["pid"] for c in st["children"]}
    parent = st["daemon"]["pid"]
    cred = st["credentials"]
    assert len(cred) == 1 and cred[0]["state"] == "ok", cred
    assert cred[0]["path"] == creds and cred[0]["key_hint"] == "WXYZ"
    assert cred[0]["expiry"] == "2099-01-01T00:00:00Z"
    assert secret not in str(st)

    openers = set()
    with open(trace) as f:
        for line in f:
            if creds in line:
                openers.add(int(line.split()[0]))
    assert openers == {pids["uploader"]}, (openers, pids)

    needle = secret.encode()
    assert scan_memory(pids["uploader"], needle), "control: the scan must find it in the uploader"
    for name, pid in (("parent", parent), ("watcher", pids["watcher"]),
                      ("statusd", pids["statusd"])):
        assert not scan_memory(pid, needle), "secret found in %s" % name
    assert secret not in d.read_log()
    os.kill(parent, signal.SIGTERM)	# d.proc is strace; it exits with its tracee
    d.proc.wait(10)


@pytest.mark.parametrize("mode,state,msg", [
    (0o644, "bad-file", "too open"),
    (0o600, "bad-syntax", "line 1"),
])
def test_bad_credentials_file_reported(daemon_factory, workdir, mode, state, msg):
    d, creds = s3_daemon(daemon_factory, workdir, not os.geteuid() == 0, "x" * 40)
    if state == "bad-syntax":
        with open(creds, "w") as f:
            f.write("this is not a credentials file\n")
    os.chmod(creds, mode)
    d.start()
    st = wait_for(lambda: (lambda s: s if s["credentials"][0]["state"] != "unknown" else None)(
        d.status()), what="credential report")
    assert st["credentials"][0]["state"] == state
    assert msg in st["credentials"][0]["error"]
    assert not st["healthy"]
    assert d.ctl("status").returncode == 1
    assert d.stop() == 0


def test_missing_credentials_file_reported(daemon_factory, workdir):
    d, creds = s3_daemon(daemon_factory, workdir, os.geteuid() != 0, "y" * 40)
    os.unlink(creds)
    d.start()
    st = wait_for(lambda: (lambda s: s if s["credentials"][0]["state"] != "unknown" else None)(
        d.status()), what="credential report")
    assert st["credentials"][0]["state"] == "missing"
    assert d.stop() == 0
