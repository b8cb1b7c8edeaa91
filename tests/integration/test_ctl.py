"""vaultsyncctl and the control socket."""
import grp
import os
import pwd
import socket
import struct
import subprocess
import threading

import pytest

from conftest import IS_ROOT, MODES, Identity, binpath


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
    st = os.stat(d.sock)
    assert oct(st.st_mode & 0o777) == "0o660"
    assert st.st_gid == grp.getgrnam("vaultsync").gr_gid
    # The file mode is the first fence...
    r = run_ctl(d.sock, "status", user="nobody")
    assert r.returncode == 77 and "permission denied" in r.stderr
    # ...and SO_PEERCRED the second: with the mode opened up, the daemon still refuses.
    os.chmod(d.sock, 0o666)
    os.chmod(d.run, 0o755)
    r = run_ctl(d.sock, "status", user="nobody")
    assert r.returncode == 77, r.stdout + r.stderr
    assert "permission denied: uid %d" % pwd.getpwnam("nobody").pw_uid in r.stderr
    assert any("refused uid" in rec["msg"] for rec in d.records())
    # A ControlGroup member is let in (through the file mode and the check).
    os.chmod(d.sock, 0o660)
    r = run_ctl(d.sock, "status", "--json", user="vstest",
                groups=[grp.getgrnam("vaultsync").gr_gid])
    assert r.returncode == 0, r.stderr
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
