"""S3 remotes against a real server (Ceph RGW on 127.0.0.1, the session
fixture `s3`): round trips checked with /usr/bin/aws, s3cmd, age and tar;
wrong credentials, conflicts, multipart, a server that goes away, history,
and where the secret may be found in memory."""
import os
import shutil
import signal
import tempfile
import time

import pytest

from conftest import IS_ROOT, MODES, wait_for
from test_credentials import scan_memory
from test_remote_dir import restore
from test_vault import VaultEnv, populate, pushed_or_current, tree


class S3Env:
    def __init__(self, factory, workdir, user_mode, s3, extra="", conf="", secret=None,
                 mount_size="16M", access_key=None):
        self.s3 = s3
        self.prefix = s3.new_prefix()
        self.creds = os.path.join(workdir, "s3.env")
        s3.creds_file(self.creds, secret=secret, access_key=access_key)
        vault = ("  Remote s3://%s/%s\n  Endpoint %s\n  Region %s\n  PathStyle yes\n"
                 "  CredentialsFile %s\n" % (s3.bucket, self.prefix, s3.endpoint, s3.region,
                                            self.creds)) + extra
        self.e = VaultEnv(factory, workdir, user_mode, vault_extra=vault, extra_conf=conf)
        if mount_size != "16M":
            with open(self.e.d.conf) as f:
                c = f.read()
            with open(self.e.d.conf, "w") as f:
                f.write(c.replace("MountSize 16M", "MountSize " + mount_size))
        self.key = self.prefix + "/v/vault.tar.age"
        self.work = workdir

    def set_secret(self, secret):
        """Rewrite the credentials file in place (a new inode, as editors do)."""
        tmp = self.creds + ".new"
        owner = self.e.d.ident.uid if self.e.user_mode and IS_ROOT else None
        self.s3.creds_file(tmp, secret=secret, owner=owner)
        os.rename(tmp, self.creds)

    def download(self, key=None):
        """aws s3 cp of an object to a local file; its path."""
        out = os.path.join(tempfile.mkdtemp(prefix="vs-dl-"), "obj")
        r = self.s3.aws("s3", "cp", self.s3.url(key or self.key), out)
        assert r.returncode == 0, r.stderr
        return out


@pytest.fixture(params=MODES)
def s3env(request, daemon_factory, workdir, s3):
    made = []

    def make(**kw):
        env = S3Env(daemon_factory, workdir, request.param, s3, **kw)
        made.append(env)
        return env
    yield make
    for env in made:
        env.e.close()


def restores_to(env, path, want):
    out = restore(env.e, path)
    try:
        return tree(out) == want
    finally:
        shutil.rmtree(out, ignore_errors=True)


def started(env):
    e = env.e
    e.d.start()
    e.ctl("init", "v", "--passphrase-file", e.passfile)
    return e


def test_no_configuration_in_any_childs_argv(s3env, s3):
    """The uploader's configuration travels on its channel: /proc/PID/cmdline,
    readable by anyone on the host, names no endpoint, bucket, prefix or file."""
    env = s3env()
    e = started(env)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    st = e.d.status()
    assert st["vaults"][0]["pushed"]		# the uploader is configured and working
    host = s3.endpoint.split("://", 1)[1]
    secret_ish = [host, s3.bucket, env.prefix, env.creds, "s3.env", "|s3|", "-C"]
    pids = {c["name"]: c["pid"] for c in st["children"] if c["pid"]}
    assert set(pids) == {"watcher", "uploader", "statusd"}, pids
    for name, pid in pids.items():
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
        for word in secret_ish:
            assert not any(word in a for a in argv), (name, word, argv)
        # What is there: the mode and the identity to drop to, nothing else.
        assert argv[1:3] == ["-m", "user" if e.user_mode else "system"], (name, argv)
    assert e.d.stop() == 0


def test_round_trip_with_aws_and_s3cmd(s3env, s3):
    env = s3env()
    e = started(env)
    populate(e.path, e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v")
    assert pushed_or_current(r), r.stdout
    # Settled: a watcher tick for the same changes may still be finishing.
    v = wait_for(lambda: (lambda v: v if v["state"] == "unlocked" else None)(e.vstate()),
                 what="settled")
    assert v["pushed"] and v["remote_etag"], v
    assert v["compare_and_swap"] == "conditional"
    keys = s3.list_keys(env.prefix + "/")
    assert keys == [env.prefix + "/v/identity.age", env.key], keys
    # The object's ETag is the one the daemon recorded (unquoted).
    assert s3.head(env.key)["ETag"].strip('"') == v["remote_etag"]
    # Standard tools restore it: aws s3 cp, then age and tar.
    assert restores_to(env, env.download(), want)
    # s3cmd sees and fetches the same bytes.
    r = s3.s3cmd("ls", s3.url(env.prefix + "/v/"))
    assert r.returncode == 0 and "vault.tar.age" in r.stdout, r.stdout + r.stderr
    out = os.path.join(env.work, "via-s3cmd")
    r = s3.s3cmd("get", s3.url(env.key), out)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as a, open(env.download(), "rb") as b:
        assert a.read() == b.read()
    # The content id travels as metadata; no plaintext hash does.
    meta = s3.head(env.key).get("Metadata", {})
    assert meta.get("content-id") == v["content_id"], meta
    with open(os.path.join(e.state, "state")) as f:
        sha = [l.split("=", 1)[1].strip() for l in f if l.startswith("sha256=")][0]
    assert sha not in str(s3.head(env.key))
    assert e.d.stop() == 0


def test_short_access_key_id_is_accepted(s3env, s3):
    """S3-compatible servers issue short key ids (MinIO's default is
    "minioadmin"): the daemon signs with one and the push lands."""
    assert s3.access_key3 == "minioadmin", "the test server has no short key id"
    env = s3env(access_key=s3.access_key3, secret=s3.secret_key3)
    e = started(env)
    populate(e.path, e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v")
    assert pushed_or_current(r), r.stdout + r.stderr
    st = e.d.status()
    assert st["healthy"] and st["credentials"][0]["state"] == "ok", st
    assert restores_to(env, env.download(), want)
    assert e.d.stop() == 0


def test_wrong_secret_then_fixed_without_restart(s3env, s3):
    env = s3env(secret="X" * 40)
    e = started(env)
    populate(e.path, e.owner)
    want = tree(e.path)
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1 and "SignatureDoesNotMatch" in r.stderr, r.stderr
    st = e.d.status()
    v = st["vaults"][0]
    assert v["state"] == "error" and "403" in v["last_error"], v
    assert not st["healthy"] and not v["pushed"]
    cred = st["credentials"][0]
    assert cred["state"] == "rejected" and "SignatureDoesNotMatch" in cred["error"], cred
    # Backoff: the next attempt is scheduled, not immediate, and the log is not flooded.
    wait_for(lambda: e.vstate()["consecutive_failures"] >= 2, timeout=15, what="a retry")
    assert e.vstate()["next_push_at"] is not None
    time.sleep(2)
    assert e.vstate()["consecutive_failures"] <= 5
    logged = [r for r in e.d.records() if "SignatureDoesNotMatch" in r.get("msg", "")
              and r.get("level") == "error" and "event" not in r]
    assert 1 <= len(logged) <= 2, logged
    assert not s3.list_keys(env.prefix + "/")
    assert os.path.exists(e.archive)	# nothing lost locally
    uploader = e.d.child_pids()["uploader"]
    env.set_secret(s3.secret_key)
    wait_for(lambda: e.vstate()["pushed"], timeout=30, what="push with the fixed secret")
    assert e.d.proc.poll() is None	# the daemon was never restarted
    assert e.d.child_pids()["uploader"] != uploader	# a fresh uploader read the file
    st = e.d.status()
    assert st["healthy"] and st["credentials"][0]["state"] == "ok", st
    assert restores_to(env, env.download(), want)
    assert e.d.stop() == 0


def test_conflict_goes_to_conflicts(s3env, s3):
    env = s3env()
    e = started(env)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    theirs = b"another device's archive\n" * 100
    s3.put(env.key, theirs)
    their_etag = s3.head(env.key)["ETag"]
    with open(os.path.join(e.path, "token"), "ab") as f:
        f.write(b"ours")
    mine = tree(e.path)
    r = e.ctl("sync", "v", check=False)
    assert r.returncode == 1 and "conflict" in r.stderr, r.stderr
    st = e.d.status()
    assert st["vaults"][0]["state"] == "conflict" and not st["healthy"]
    conflicts = [k for k in s3.list_keys(env.prefix + "/v/conflicts/")]
    assert len(conflicts) == 1, conflicts
    assert restores_to(env, env.download(conflicts[0]), mine)
    assert s3.get(env.key) == theirs and s3.head(env.key)["ETag"] == their_etag
    # Still nothing overwritten after more changes; push --force ends it.
    open(os.path.join(e.path, "more"), "w").close()
    e.ctl("sync", "v", check=False)
    assert s3.get(env.key) == theirs
    e.ctl("push", "v", "--force")
    assert restores_to(env, env.download(), tree(e.path))
    assert e.vstate()["state"] != "conflict"
    assert e.d.stop() == 0


def test_multipart_and_uploader_killed_mid_upload(s3env, s3):
    env = s3env(mount_size="300M", conf="MultipartThreshold 8M\n")
    e = started(env)
    size = (200 << 20) if not e.user_mode else (40 << 20)
    with open(os.path.join(e.path, "big"), "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    if not e.user_mode:
        os.chown(os.path.join(e.path, "big"), *e.owner)
    want = tree(e.path)
    # Kill the uploader once the multipart upload is under way.
    rstate = os.path.join(e.state, "remote")

    def mpu_started():
        try:
            with open(rstate) as f:
                return "mpu_id=\n" not in f.read()
        except FileNotFoundError:
            return False
    wait_for(mpu_started, timeout=60, interval=0.01, what="a multipart upload")
    victim = e.d.child_pids()["uploader"]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: e.d.child_pids().get("uploader") not in (None, victim), what="restart")
    wait_for(lambda: e.vstate()["pushed"], timeout=120, what="the push completes")
    head = s3.head(env.key)
    assert head["ETag"].strip('"').endswith(tuple("-%d" % n for n in range(2, 10000))), head
    assert restores_to(env, env.download(), want)
    # The upload the killed uploader left was aborted.
    r = s3.aws("s3api", "list-multipart-uploads", "--bucket", s3.bucket, "--prefix",
               env.prefix + "/")
    assert r.returncode == 0 and "UploadId" not in r.stdout, r.stdout
    assert e.d.stop() == 0


def test_server_down_during_push(s3env, s3):
    env = s3env()
    e = started(env)
    e.ctl("sync", "v")
    with s3.rgw_down():
        populate(e.path, e.owner)
        want = tree(e.path)
        r = e.ctl("sync", "v", check=False)
        assert r.returncode == 1, r.stdout
        wait_for(lambda: e.vstate()["consecutive_failures"] >= 2, timeout=20, what="retries")
        v = e.vstate()
        assert v["state"] == "error" and v["next_push_at"] and not v["pushed"], v
    wait_for(lambda: e.vstate()["pushed"], timeout=90, what="the push after RGW is back")
    assert restores_to(env, env.download(), want)
    assert e.d.stop() == 0


def test_history_keep_three(s3env, s3):
    env = s3env(extra="  HistoryKeep 3\n")
    e = started(env)
    for i in range(5):
        with open(os.path.join(e.path, "version"), "w") as f:
            f.write("%d\n" % i)
        e.ctl("sync", "v", check=False)
        r = e.ctl("push", "v")
        assert "pushed" in r.stdout, r.stdout
        time.sleep(1.05)
    hist = s3.list_keys(env.prefix + "/v/history/")
    assert len(hist) == 3, hist
    r = e.ctl("history", "v")
    assert "3 history version(s)" in r.stdout, r.stdout
    out = restore(e, env.download(hist[-1]))
    with open(os.path.join(out, "version")) as f:
        assert f.read() == "4\n"
    shutil.rmtree(out)
    assert e.d.stop() == 0


def test_secret_only_in_the_uploader(s3env, s3):
    env = s3env()
    e = started(env)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    assert e.vstate()["pushed"]
    pids = e.d.child_pids()
    secret = s3.secret_key.encode()
    assert scan_memory(pids["uploader"], secret)	# the scan can find it
    for name in ("watcher", "statusd"):
        if name in pids:
            assert not scan_memory(pids[name], secret), name
    assert not scan_memory(e.d.proc.pid, secret), "parent"
    assert e.d.stop() == 0


def test_pull_from_s3(s3env, s3):
    from test_remote_dir import other_device_archive
    env = s3env()
    e = started(env)
    populate(e.path, e.owner)
    e.ctl("sync", "v")
    s3.put(env.key, other_device_archive(e, {"theirs.txt": "from the laptop\n"}))
    open(os.path.join(e.path, "mine"), "w").close()
    assert e.ctl("sync", "v", check=False).returncode == 1
    assert e.vstate()["state"] == "conflict"
    r = e.ctl("pull", "v", "--passphrase-file", e.passfile)
    assert "pulled the remote latest" in r.stdout, r.stdout
    wait_for(lambda: sorted(os.listdir(e.path)) == ["theirs.txt"], what="vault refreshed")
    # Settled (a re-save of the refreshed tree may push once more): in step with the remote.
    v = wait_for(lambda: (lambda v: v if v["pushed"] and v["state"] == "unlocked" else None)(
        e.vstate()), what="in step")
    assert v["remote_etag"] == s3.head(env.key)["ETag"].strip('"')
    assert e.d.stop() == 0


def test_credentials_reread_before_they_expire(s3env, s3):
    import datetime
    env = s3env()
    expiry = (datetime.datetime.now(datetime.timezone.utc) +
              datetime.timedelta(seconds=75)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(env.creds, "a") as f:
        f.write("AWS_CREDENTIAL_EXPIRATION=%s\n" % expiry)
    e = env.e
    e.d.start()
    st = e.d.status()
    assert st["credentials"][0]["expiry"] == expiry, st["credentials"]
    first = e.d.child_pids()["uploader"]
    # 60 s before the expiry the uploader is started afresh to read the file again.
    wait_for(lambda: e.d.child_pids().get("uploader") not in (None, first), timeout=40,
             interval=0.5, what="a fresh uploader before the expiry")
    assert any("about to expire" in r.get("msg", "") for r in e.d.records())
    assert e.d.stop() == 0
