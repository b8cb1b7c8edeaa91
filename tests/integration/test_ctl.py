"""vaultsyncctl and the control socket."""
import grp
import json
import os
import pwd
import socket
import struct
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import IS_ROOT, MODES, Identity, binpath, wait_for


def run_ctl(sock, *args, user=None, groups=None):
    argv = [binpath("vaultsyncctl"), "-s", sock] + list(args)
    if user is not None:
        pw = pwd.getpwnam(user)
        pre = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid]
        pre += ["--groups=%s" % ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
        argv = pre + ["--"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def test_status_exits_2_without_daemon(workdir):
    r = run_ctl(os.path.join(workdir, "nothing.sock"), "status")
    assert r.returncode == 2
    assert "not running" in r.stderr
    r = run_ctl(os.path.join(workdir, "nothing.sock"), "status", "--json")
    assert r.returncode == 2


@pytest.mark.root
def test_socket_refuses_other_uids(daemon_factory):
    d = daemon_factory(user_mode=False).start()
    gid = grp.getgrnam("vaultsync").gr_gid
    st = os.stat(d.sock)
    assert oct(st.st_mode & 0o777) == "0o660"
    assert st.st_gid == gid
    # RuntimeDir as the daemon made it: the group may pass, nobody else;
    # the token in daemon.json stays the daemon's.
    st = os.stat(d.run)
    assert (oct(st.st_mode & 0o777), st.st_uid, st.st_gid) == ("0o750", 0, gid)
    st = os.stat(os.path.join(d.run, "daemon.json"))
    assert (oct(st.st_mode & 0o777), st.st_uid) == ("0o600", 0)
    # A ControlGroup member is let in, on a daemon started the default way
    # (through the directory, the socket's mode and the check).
    r = run_ctl(d.sock, "status", user="vstest", groups=[gid])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_ctl(d.sock, "status", "--json", user="vstest", groups=[gid])
    assert r.returncode == 0, r.stderr
    # The file modes are the first fence...
    r = run_ctl(d.sock, "status", user="nobody")
    assert r.returncode == 77 and "permission denied" in r.stderr
    # ...and SO_PEERCRED the second: with the modes opened up, the daemon still refuses.
    os.chmod(d.sock, 0o666)
    os.chmod(d.run, 0o755)
    r = run_ctl(d.sock, "status", user="nobody")
    assert r.returncode == 77, r.stdout + r.stderr
    assert "permission denied: uid %d" % pwd.getpwnam("nobody").pw_uid in r.stderr
    assert any("refused uid" in rec["msg"] for rec in d.records())
    assert d.stop() == 0


@pytest.mark.root
def test_existing_runtime_dir_that_keeps_the_group_out_is_named(daemon_factory, workdir):
    """A RuntimeDir that was there is left as it is (it might not be only
    ours), and a warning says how to let ControlGroup in."""
    run = os.path.join(workdir, "run")
    os.mkdir(run, 0o700)
    d = daemon_factory(user_mode=False).start()
    assert oct(os.stat(run).st_mode & 0o777) == "0o700"
    warn = [rec["msg"] for rec in d.records() if rec.get("level") == "warning" and
            "keeps ControlGroup vaultsync from the control socket" in rec.get("msg", "")]
    assert warn == ["RuntimeDir %s (mode 0700, gid 0) keeps ControlGroup vaultsync from the "
                    "control socket: chgrp vaultsync and chmod 0750 it, or remove it to "
                    "have it made" % run], d.read_log()
    assert d.stop() == 0


def test_user_mode_socket_private(daemon_factory):
    d = daemon_factory(user_mode=True).start()
    assert oct(os.stat(d.sock).st_mode & 0o777) == "0o600"
    assert d.stop() == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_status_text_json_and_version(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    r = d.ctl("status")
    assert r.returncode == 0
    assert "healthy" in r.stdout and "vault demo: locked" in r.stdout
    st = d.status()
    assert st["schema_version"] == 1 and st["healthy"] is True
    assert st["daemon"]["pid"] == d.proc.pid
    assert st["daemon"]["mode"] == ("user" if user_mode else "system")
    assert st["daemon"]["status_url"].startswith("http://127.0.0.1:")
    assert [v["name"] for v in st["vaults"]] == ["demo"]
    assert st["vaults"][0]["watcher"]["mode"] == "inotify"
    r = d.ctl("status", "nosuchvault", check=False)
    assert r.returncode == 1 and "no such vault" in r.stderr
    r = d.ctl("version")
    assert r.returncode == 0
    assert "vaultsyncctl 0.1.0 (protocol 1)" in r.stdout
    assert "vaultsyncd 0.1.0 protocol 1" in r.stdout
    assert "warning" not in r.stderr
    assert d.stop() == 0


def fake_daemon(path, proto):
    """A socket that answers like a daemon of another protocol version."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        hello = struct.pack("=IIiI32s", proto, 0, 1, 0, b"9.9.9")
        c.send(struct.pack("=IIII", 1, len(hello), 0, 0) + hello)
        c.recv(4096)	# its HELLO
        c.recv(4096)	# its request
        msg = b"vaultsyncd 9.9.9".ljust(1024, b"\0")
        res = struct.pack("=iI", 0, 0) + msg
        c.send(struct.pack("=IIII", 14, len(res), 0, 0) + res)
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def test_version_mismatch_warning(workdir):
    path = os.path.join(workdir, "fake.sock")
    srv, t = fake_daemon(path, 99)
    r = run_ctl(path, "version")
    t.join(5)
    srv.close()
    assert r.returncode == 0, r.stderr
    assert "warning: the daemon speaks protocol 99" in r.stderr
    assert "vaultsyncd 9.9.9" in r.stdout


def test_ctl_rejects_garbage_from_daemon(workdir):
    path = os.path.join(workdir, "bad.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.send(struct.pack("=IIII", 1, 5000, 0, 0) + b"x" * 10)
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = run_ctl(path, "status")
    t.join(5)
    srv.close()
    assert r.returncode == 1
    assert "bad message from the daemon" in r.stderr


def test_daemon_survives_garbage_on_control_socket(daemon_factory):
    d = daemon_factory(user_mode=not IS_ROOT).start()
    for payload in (b"", b"x", struct.pack("=IIII", 13, 3, 0, 0) + b"abc",
                    struct.pack("=IIII", 99, 0, 0, 0), b"\xff" * 5000):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(d.sock)
        s.recv(4096)	# HELLO
        s.send(payload)
        s.settimeout(2)
        try:
            s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    assert d.proc.poll() is None
    assert d.status()["healthy"]
    assert d.stop() == 0


# The control socket's own deadlines (parent/ctl.c), with room for the
# once-a-second sweep and a loaded machine.
HELLO_DEADLINE = 5
IDLE_DEADLINE = 30
SLACK = 10

MSG_HELLO, MSG_CTL_REQUEST, MSG_CTL_RESULT = 1, 13, 14
CTL_VERSION, CTL_UNLOCK = 2, 6


def ctl_msg(mtype, payload, seq=0):
    return struct.pack("=IIII", mtype, len(payload), seq, 0) + payload


def ctl_hello():
    return ctl_msg(MSG_HELLO, struct.pack("=IIiI32s", 1, 4, os.getpid(), 0, b"test"))


def ctl_request(cmd, vault=b"", seq=1):
    return ctl_msg(MSG_CTL_REQUEST, struct.pack("=II64s256s", cmd, 0, vault, b""), seq)


def ctl_open(path, hello=True):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.settimeout(5)
    m = s.recv(8192)
    assert struct.unpack_from("=I", m)[0] == MSG_HELLO, m[:16]
    if hello:
        s.send(ctl_hello())
    return s


def closed_by_daemon(s, timeout):
    """Read (and drop) what the daemon sends until it closes; the seconds it took."""
    t0 = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            if s.recv(8192) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


class ControlGroupMember(Identity):
    """The test user with the ControlGroup (vaultsync) as its only extra group."""

    def __init__(self):
        super().__init__(True)

    def wrap(self, argv):
        return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                "--groups=%d" % grp.getgrnam("vaultsync").gr_gid, "--"] + argv


# Runs as the peer that hogs the socket: N connections that never send a byte,
# then how long each stayed open.
HOG = r"""
import json, select, socket, sys, time
path, n, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    socks.append(s)
t0 = time.monotonic()
print("ready", flush=True)
open_ = {s.fileno(): s for s in socks}
closed = []
while open_ and time.monotonic() - t0 < limit:
    r, _, _ = select.select(list(open_), [], [], 0.2)
    for fd in r:
        try:
            data = open_[fd].recv(8192)
        except ConnectionResetError:
            data = b""
        if data == b"":
            closed.append(time.monotonic() - t0)
            open_.pop(fd).close()
print(json.dumps({"closed": closed, "still_open": len(open_)}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("user_mode", MODES)
def test_idle_peer_cannot_take_every_slot(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    # System mode: a ControlGroup member, not root, is the peer the socket must be fair to.
    hog_ident = d.ident if user_mode else ControlGroupMember()
    n = 40		# more than the socket has slots
    hog = subprocess.Popen(hog_ident.wrap([sys.executable, "-c", HOG, d.sock, str(n),
                                           str(HELLO_DEADLINE + SLACK)]),
                           stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout.readline().strip() == "ready"
        # Root, and the hog's own uid, still get in while the hog holds its share.
        r = run_ctl(d.sock, "status")
        assert r.returncode == 0, r.stdout + r.stderr
        r = d.ctl("status", check=False, as_ident=hog_ident)
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(hog.stdout.readline())
    finally:
        hog.kill()
        hog.wait()
    # Connections that never said HELLO are closed by the daemon, soon.
    assert out["still_open"] == 0, out
    assert len(out["closed"]) == n
    assert d.proc.poll() is None and d.status()["healthy"]
    assert d.stop() == 0


@pytest.mark.slow
def test_idle_connections_are_closed(daemon_factory):
    d = daemon_factory(user_mode=not IS_ROOT).start()
    idle = ctl_open(d.sock)
    secretless = ctl_open(d.sock)	# asks for an unlock, never sends the passphrase
    secretless.send(ctl_request(CTL_UNLOCK, b"demo"))
    busy = ctl_open(d.sock)
    t0 = time.monotonic()
    seq = 1
    done = {}
    # The connection that keeps asking stays open past the deadline; the others do not.
    while len(done) < 2 and time.monotonic() - t0 < IDLE_DEADLINE + SLACK:
        seq += 1
        busy.send(ctl_request(CTL_VERSION, seq=seq))
        m = busy.recv(8192)
        assert struct.unpack_from("=I", m)[0] == MSG_CTL_RESULT
        for name, s in (("idle", idle), ("secretless", secretless)):
            if name not in done:
                t = closed_by_daemon(s, 2)
                if t is not None:
                    done[name] = time.monotonic() - t0
    assert set(done) == {"idle", "secretless"}, "still open after %ds: %s" % (
        IDLE_DEADLINE + SLACK, {"idle", "secretless"} - set(done))
    # A HELLO'd connection is not held to the short pre-HELLO deadline.
    assert min(done.values()) > HELLO_DEADLINE + 2, done
    busy.send(ctl_request(CTL_VERSION, seq=seq + 1))
    m = busy.recv(8192)
    assert struct.unpack_from("=I", m)[0] == MSG_CTL_RESULT
    assert b"vaultsyncd" in m
    busy.close()
    assert d.stop() == 0


@pytest.mark.slow
def test_request_in_flight_outlives_the_idle_deadline(daemon_factory, workdir):
    from test_remote_dir import remote_env
    from test_vault import populate

    e = remote_env(daemon_factory, workdir, not IS_ROOT, conf="Interval 1h\n")
    uploader = None
    try:
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        populate(e.path, e.owner)
        e.ctl("sync", "v")
        # The uploader cannot finish the push: the sync waits on it, past the deadline.
        uploader = e.d.child_pids()["uploader"]
        os.kill(uploader, signal.SIGSTOP)
        with open(os.path.join(e.path, "more"), "w") as f:
            f.write("x" * 100000)
        if not e.user_mode and IS_ROOT:
            os.chown(os.path.join(e.path, "more"), *e.owner)
        res = {}
        t = threading.Thread(target=lambda: res.setdefault(
            "r", e.d.ctl("sync", "v", check=False, timeout=IDLE_DEADLINE + 3 * SLACK)))
        t.start()
        wait_for(lambda: e.vstate()["state"] == "pushing", what="a push in flight")
        idle = ctl_open(e.d.sock)
        # The deadline is running: an idle connection opened now is closed...
        assert closed_by_daemon(idle, IDLE_DEADLINE + SLACK) is not None
        time.sleep(2)
        # ...while the sync, waiting longer than that, is still answered.
        assert t.is_alive()
        os.kill(uploader, signal.SIGCONT)
        uploader = None
        t.join()
        r = res["r"]
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if uploader is not None:
            os.kill(uploader, signal.SIGCONT)
        e.close()


PERM_VAULTS = """Vault a
  Path {w}/mnt-a
  Mount yes
  MountSize 16M
  Owner vstest:vstest
  Remote dir:{w}/remote-a
Vault b
  Path {w}/mnt-b
  Mount yes
  MountSize 16M
  Remote dir:{w}/remote-b
"""


@pytest.mark.root
def test_permission_table(daemon_factory, workdir):
    """Root and the daemon's user may do everything; a vault's Owner the commands
    on that vault; any other ControlGroup member status and version only.  A
    refusal names the rule, and comes before the passphrase is looked at."""
    d = daemon_factory(user_mode=False, vault_conf=PERM_VAULTS.format(w=workdir)).start()
    gid = grp.getgrnam("vaultsync").gr_gid
    vstest = pwd.getpwnam("vstest")
    passfile = os.path.join(workdir, "pass-vstest")
    with open(passfile, "w") as f:
        f.write("correct horse battery staple\n")
    os.chown(passfile, vstest.pw_uid, vstest.pw_gid)
    os.chmod(passfile, 0o600)
    nobodypass = os.path.join(workdir, "pass-nobody")
    with open(nobodypass, "w") as f:
        f.write("a guess\n")
    os.chown(nobodypass, pwd.getpwnam("nobody").pw_uid, -1)
    os.chmod(nobodypass, 0o600)
    rootpass = os.path.join(workdir, "pass-root")
    with open(rootpass, "w") as f:
        f.write("another correct horse\n")
    os.chmod(rootpass, 0o600)

    def owner(*a):	# vstest: Owner of a, in the ControlGroup
        return run_ctl(d.sock, *a, user="vstest", groups=[gid])

    def member(*a):	# nobody: in the ControlGroup, Owner of nothing
        return run_ctl(d.sock, *a, user="nobody", groups=[gid])

    def refused(r, rule):
        assert r.returncode == 77, (r.returncode, r.stdout, r.stderr)
        assert "permission denied" in r.stderr and rule in r.stderr, r.stderr

    # The Owner of a runs a's commands, and they work.
    for args in (("init", "a", "--passphrase-file", passfile), ("sync", "a"),
                 ("push", "a"), ("history", "a"), ("verify", "a"), ("lock", "a"),
                 ("unlock", "a", "--passphrase-file", passfile), ("lock", "a")):
        r = owner(*args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert os.path.exists(os.path.join(workdir, "remote-a", "a", "vault.tar.age"))
    # ...and none of b's (root owns b), nor the daemon's.
    for args in (("lock", "b"), ("sync", "b"), ("push", "b", "--force"), ("history", "b"),
                 ("verify", "b"), ("init", "b", "--passphrase-file", passfile),
                 ("unlock", "b", "--passphrase-file", passfile),
                 ("pull", "b", "--passphrase-file", passfile)):
        refused(owner(*args), "of vault b is for root, the daemon's user and the vault's "
                "Owner (root); uid %d" % vstest.pw_uid)
    for args in (("stop",), ("reload",)):
        refused(owner(*args), "is for root and the daemon's user only")
    assert owner("status").returncode in (0, 1)
    # A plain ControlGroup member: status and version, nothing else.
    r = member("status", "--json")
    assert r.returncode in (0, 1) and {v["name"] for v in json.loads(r.stdout)["vaults"]} == \
        {"a", "b"}, r.stdout + r.stderr
    assert member("version").returncode == 0
    for args in (("lock", "a"), ("sync", "a"), ("history", "a"),
                 ("unlock", "a", "--passphrase-file", nobodypass)):
        refused(member(*args), "Owner (vstest)")
    refused(member("stop"), "is for root and the daemon's user only")
    # Nothing refused reached the vaults: a is as its Owner left it, b untouched.
    st = {v["name"]: v for v in d.status()["vaults"]}
    assert st["a"]["state"] == "locked" and st["b"]["state"] == "locked", st
    assert st["b"]["content_id"] is None and st["b"]["archive_bytes"] == 0, st["b"]
    assert not os.path.exists(os.path.join(workdir, "state", "b", "vault.tar.age"))
    assert not os.path.ismount(os.path.join(workdir, "mnt-b"))
    assert sum("refused" in rec["msg"] and "not permitted" in rec["msg"]
               for rec in d.records()) >= 14
    # Root may do everything.
    for args in (("init", "b", "--passphrase-file", rootpass), ("sync", "b"), ("lock", "b"),
                 ("unlock", "a", "--passphrase-file", passfile), ("sync", "a"),
                 ("lock", "a"), ("reload",), ("stop",)):
        r = run_ctl(d.sock, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    d.proc.wait(timeout=30)
    assert d.proc.returncode == 0
