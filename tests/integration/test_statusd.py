"""statusd: the loopback HTTP API (only /v1/healthz in this release)."""
import json
import os
import stat
import urllib.error
import urllib.request

import pytest

from conftest import MODES


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.mark.parametrize("user_mode", MODES)
def test_healthz_and_daemon_json(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    url = d.status()["daemon"]["status_url"]
    code, hdrs, body = get(url + "v1/healthz")
    assert code == 200
    assert hdrs["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "schema_version": 1, "version": "0.1.0"}
    assert get(url + "v1/nothing")[0] == 404
    assert get(url + "v1/healthz", method="POST")[0] == 405
    info = os.path.join(d.run, "daemon.json")
    st = os.stat(info)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == d.ident.uid
    with open(info) as f:
        dj = json.load(f)
    assert dj["schema_version"] == 1 and dj["pid"] == d.proc.pid and dj["url"] == url
    assert len(dj["token"]) == 64 and int(dj["token"], 16) >= 0
    # Still served after statusd is killed and restarted.
    os.kill(d.child_pids()["statusd"], 9)
    from conftest import wait_for
    wait_for(lambda: d.children()["statusd"]["restarts"] == 1 and
             d.children()["statusd"]["state"] == "running", what="statusd restart")
    assert get(url + "v1/healthz")[0] == 200
    assert d.stop() == 0


def test_status_api_off_means_three_processes(daemon_factory):
    d = daemon_factory(user_mode=os.geteuid() != 0, extra_conf="StatusAPI no\n").start()
    kids = d.children()
    assert kids["statusd"]["pid"] == 0 and kids["statusd"]["state"] == "stopped"
    assert d.status()["healthy"]
    assert not os.path.exists(os.path.join(d.run, "daemon.json"))
    assert d.stop() == 0


def test_fixed_port_in_use_exits_73(daemon_factory, workdir):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    d = daemon_factory(user_mode=os.geteuid() != 0, extra_conf="StatusListen 127.0.0.1:%d\n" % port)
    import subprocess
    r = subprocess.run(d.argv(), capture_output=True, text=True, env=d.ident.env(), timeout=10)
    s.close()
    assert r.returncode == 73
    assert "StatusListen 127.0.0.1:%d: Address already in use" % port in r.stdout


# ---- A full connection table must not make statusd deaf ----

import http.client
import signal
import socket
import threading
import time
import urllib.parse

from conftest import pid_alive, wait_for


def status_port(d):
    return urllib.parse.urlsplit(d.status()["daemon"]["status_url"]).port


def healthz_from(src, port, timeout=5):
    """One GET /v1/healthz from source address src; the status code, or raises."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    try:
        c.request("GET", "/v1/healthz")
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def healthz_retrying(port, until, src="127.0.0.1"):
    """Like a client that retries a refused connection, until a monotonic deadline."""
    while True:
        try:
            return healthz_from(src, port, timeout=max(0.5, min(3, until - time.monotonic())))
        except (OSError, http.client.HTTPException):
            if time.monotonic() > until:
                raise
            time.sleep(0.1)


def open_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def server_closed(s):
    """True once the server has closed (or reset) the connection."""
    s.setblocking(False)
    try:
        return s.recv(1024, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class Drip:
    """Slowloris: each connection sends a partial request line, then one
    byte every two seconds, and never finishes its headers."""

    def __init__(self, port, sources, per_source):
        self.socks = []
        for src in sources:
            for _ in range(per_source):
                s = open_from(src, port)
                s.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
                self.socks.append(s)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.wait(2):
            for s in self.socks:
                try:
                    s.send(b"a")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.t.join()
        for s in self.socks:
            s.close()


@pytest.mark.slow
def test_slow_drip_clients_do_not_lock_out_others(daemon_factory):
    d = daemon_factory(user_mode=os.geteuid() != 0).start()
    port = status_port(d)
    drip = Drip(port, ["127.0.0.1", "127.0.0.2", "127.0.0.3"], 16)
    try:
        time.sleep(1)
        # Another address finds room at once, while every drip is still open.
        assert healthz_from("127.0.0.4", port) == 200
        # The dripping address's own later requests get through within a few seconds.
        until = time.monotonic() + 15
        codes = [healthz_retrying(port, until) for _ in range(20)]
        assert codes == [200] * 20
        # Dripping never completes the headers, so every drip is cut off.
        wait_for(lambda: all(server_closed(s) for s in drip.socks), timeout=15,
                 what="the server to close the slow-drip connections")
    finally:
        drip.close()
    assert d.children()["statusd"]["restarts"] == 0
    assert d.stop() == 0


SOURCES = ["127.0.0.%d" % i for i in range(1, 9)]


def fill(port):
    """More silent connections, from more addresses, than statusd serves at once."""
    return [open_from(src, port) for src in SOURCES for _ in range(8)]


@pytest.mark.slow
def test_accepts_again_after_clients_close(daemon_factory):
    d = daemon_factory(user_mode=os.geteuid() != 0).start()
    port = status_port(d)
    socks = fill(port)
    time.sleep(1)
    # Closed while statusd is not looking, so that one pass finds every close.
    pid = d.child_pids()["statusd"]
    os.kill(pid, signal.SIGSTOP)
    try:
        for s in socks:
            s.close()
        time.sleep(0.2)
    finally:
        os.kill(pid, signal.SIGCONT)
    # Every slot is free again: each request is served at its first attempt.
    codes = [healthz_from("127.0.0.1", port) for _ in range(20)]
    assert codes == [200] * 20
    assert d.children()["statusd"]["restarts"] == 0
    assert d.stop() == 0


@pytest.mark.slow
def test_silent_clients_are_dropped(daemon_factory):
    d = daemon_factory(user_mode=os.geteuid() != 0).start()
    port = status_port(d)
    socks = fill(port)
    try:
        until = time.monotonic() + 15
        codes = [healthz_retrying(port, until) for _ in range(20)]
        assert codes == [200] * 20
        wait_for(lambda: all(server_closed(s) for s in socks), timeout=15,
                 what="the server to close the silent connections")
        assert healthz_from("127.0.0.1", port) == 200
    finally:
        for s in socks:
            s.close()
    assert d.children()["statusd"]["restarts"] == 0
    assert d.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("user_mode", MODES)
def test_unresponsive_statusd_is_restarted(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    port = status_port(d)
    old = d.child_pids()["statusd"]
    os.kill(old, signal.SIGSTOP)
    try:
        # A ping every 5 s, 10 s to answer: restarted well within 40 s.
        wait_for(lambda: d.children()["statusd"]["restarts"] == 1 and
                 d.children()["statusd"]["state"] == "running", timeout=40,
                 interval=0.5, what="the parent to restart a statusd that does not answer")
        assert d.children()["statusd"]["pid"] != old
        assert d.children()["statusd"]["last_reason"] == "did not answer a liveness check"
        wait_for(lambda: not pid_alive(old), what="the stopped statusd to be gone")
    finally:
        if pid_alive(old):
            os.kill(old, signal.SIGCONT)
    assert any("statusd did not answer a liveness check" in r.get("msg", "")
               for r in d.records())
    assert healthz_from("127.0.0.1", port) == 200
    # A statusd that answers is left alone.
    time.sleep(12)
    assert d.children()["statusd"]["restarts"] == 1
    assert d.stop() == 0


def _healthz(url):
    code, _, body = get(url + "v1/healthz")
    return code, json.loads(body)


@pytest.mark.parametrize("user_mode", MODES)
def test_healthz_follows_the_daemons_health(daemon_factory, workdir, user_mode):
    """healthz says what vaultsyncctl status says, from the snapshots the
    parent pushes: 503 naming the vault while it is in conflict, 200 again
    once push --force resolved it, without a restart."""
    from conftest import wait_for
    from test_remote_dir import other_device_archive, remote_env, write_as_other_device
    e = remote_env(daemon_factory, workdir, user_mode)
    try:
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        e.ctl("sync", "v")
        url = e.d.status()["daemon"]["status_url"]

        def agree(want_code):
            code, body = _healthz(url)
            st = e.d.status()
            if code != want_code or st["healthy"] != (want_code == 200):
                return None
            return body
        body = wait_for(lambda: agree(200), timeout=10, what="healthz 200")
        assert body["status"] == "ok", body
        write_as_other_device(e, other_device_archive(e, {"theirs.txt": "laptop\n"}))
        with open(os.path.join(e.path, "mine.txt"), "w") as f:
            f.write("mine\n")
        assert e.ctl("sync", "v", check=False).returncode == 1
        body = wait_for(lambda: agree(503), timeout=10, what="healthz 503")
        assert body["status"] == "unhealthy", body
        assert any(r.startswith("vault v: conflict") for r in body["reasons"]), body
        assert e.ctl("push", "v", "--force", check=False).returncode == 0
        body = wait_for(lambda: agree(200), timeout=10, what="healthz 200 again")
        assert body == {"status": "ok", "schema_version": 1, "version": "0.1.0"}, body
        assert e.d.stop() == 0
    finally:
        e.close()


def test_healthz_names_missing_credentials(daemon_factory, workdir):
    """A CredentialsFile that is not there: 503 naming it, 200 once it exists
    (the uploader is restarted to read it; the daemon is not)."""
    from conftest import wait_for
    user_mode = os.geteuid() != 0
    creds = os.path.join(workdir, "s3.env")
    d = daemon_factory(user_mode=user_mode, extra_conf="CredentialsFile %s\n" % creds,
                       vault_conf="Vault s3v\n  Path %s/vault\n  Mount no\n"
                       "  Remote s3://test-bucket/vaults\n  Endpoint http://127.0.0.1:9\n"
                       % workdir)
    d.start()
    url = d.status()["daemon"]["status_url"]
    pid = d.proc.pid

    def code_and_body(want, reason=None):
        code, body = _healthz(url)
        if code != want or d.status()["healthy"] != (want == 200):
            return None
        if reason is not None and not any(r.startswith(reason) for r in body["reasons"]):
            return None
        return body
    # "unknown" until the uploader has looked, then "missing".
    wait_for(lambda: code_and_body(503, "credentials %s: missing" % creds), timeout=15,
             what="healthz 503 naming the missing file")
    with open(creds, "w") as f:
        f.write("AWS_ACCESS_KEY_ID=AKIATESTKEY0000WXYZ\nAWS_SECRET_ACCESS_KEY=%s\n" % ("s" * 40))
    os.chmod(creds, 0o600)
    if user_mode is False and d.ident.uid != 0:
        os.chown(creds, d.ident.uid, d.ident.gid)
    d.ctl("reload")
    wait_for(lambda: code_and_body(200), timeout=20, what="healthz 200")
    assert d.proc.pid == pid and d.stop() == 0
