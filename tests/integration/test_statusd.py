"""statusd: the loopback HTTP API: healthz, status, vaults, metrics, and the
checks every request passes first (Host, method, bearer token)."""
import json
import os
import re
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import IS_ROOT, MODES


SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api",
                      "status-api.schema.json")


def schema_for(path, code):
    """The definition of docs/api/status-api.schema.json an answer must match."""
    path = path.split("?")[0]
    if (path == "/v1/healthz" and code == 200) or code == 503:
        return "healthz"		# every route answers as healthz before the first snapshot
    if code != 200:
        return "error"
    if path == "/v1/status":
        return "status"
    if path == "/v1/vaults":
        return "vaults"
    if path == "/v1/events":
        return "events"
    if path.startswith("/v1/vaults/"):
        return "ticks" if path.endswith("/ticks") else "vault"
    raise AssertionError("no schema for " + path)


def validate(doc, name):
    import jsonschema
    with open(SCHEMA) as f:
        defs = json.load(f)["$defs"]
    jsonschema.Draft202012Validator({"$ref": "#/$defs/" + name, "$defs": defs}).validate(doc)


def get(url, method="GET", headers=None, data=None):
    """One request; every JSON answer is checked against the API's schema."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            code, hdrs, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        code, hdrs, body = e.code, e.headers, e.read()
    if body and (hdrs.get("Content-Type") or "") == "application/json":
        validate(json.loads(body), schema_for(urllib.parse.urlsplit(url).path, code))
    return code, hdrs, body


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


def api(d):
    """The status URL and the bearer token, from daemon.json as a client reads them."""
    with open(os.path.join(d.run, "daemon.json")) as f:
        dj = json.load(f)
    return dj["url"], {"Authorization": "Bearer " + dj["token"]}


def volatile_removed(doc):
    doc = json.loads(json.dumps(doc))
    doc["daemon"].pop("uptime_s")
    for c in doc["children"]:
        c.pop("started_at")
    return doc


@pytest.mark.parametrize("user_mode", MODES)
def test_status_routes_serve_the_snapshot(daemon_factory, user_mode):
    """/v1/status is the document vaultsyncctl status --json prints; /v1/vaults
    and /v1/vaults/NAME are its vaults; each needs the token of daemon.json."""
    from conftest import wait_for
    d = daemon_factory(user_mode=user_mode).start()
    url, auth = api(d)
    # The snapshot follows the daemon within a push interval: compare once they agree.
    def same():
        code, hdrs, body = get(url + "v1/status", headers=auth)
        assert code == 200 and hdrs["Content-Type"] == "application/json", (code, body)
        assert hdrs["Cache-Control"] == "no-store" and hdrs["X-Content-Type-Options"] == "nosniff"
        assert "Access-Control-Allow-Origin" not in hdrs
        mine = json.loads(body)
        return mine if volatile_removed(mine) == volatile_removed(d.status()) else None
    doc = wait_for(same, timeout=10, what="/v1/status to match vaultsyncctl status --json")
    validate(d.status(), "status")	# the same document from vaultsyncctl
    # The schema is strict enough to fail: a field missing, a state it does not know.
    import jsonschema
    broken = json.loads(json.dumps(doc))
    del broken["vaults"][0]["state"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "status")
    broken = json.loads(json.dumps(doc))
    broken["vaults"][0]["state"] = "asleep"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, "status")
    names = [v["name"] for v in doc["vaults"]]
    assert names and doc["schema_version"] == 1 and doc["daemon"]["pid"] == d.proc.pid
    code, _, body = get(url + "v1/vaults", headers=auth)
    assert code == 200 and [v["name"] for v in json.loads(body)["vaults"]] == names
    code, _, body = get(url + "v1/vaults/" + names[0], headers=auth)
    one = json.loads(body)
    assert code == 200 and one["name"] == names[0] and one["state"] == "locked"
    assert get(url + "v1/vaults/no-such-vault", headers=auth)[0] == 404
    assert get(url + "v1/vaults/..%2Fetc", headers=auth)[0] == 404
    assert get(url + "v1/vaults/", headers=auth)[0] == 404
    # Without the token, with another, with one a byte short: 401, and nothing of the vaults.
    wrong = {"Authorization": auth["Authorization"][:-1] + ("0" if auth["Authorization"][-1] != "0" else "1")}
    for h in ({}, wrong, {"Authorization": auth["Authorization"][:-1]},
              {"Authorization": auth["Authorization"].replace("Bearer ", "Basic ")}):
        for path in ("v1/status", "v1/vaults", "v1/vaults/" + names[0], "metrics"):
            code, hdrs, body = get(url + path, headers=h)
            assert code == 401 and hdrs["WWW-Authenticate"].startswith("Bearer"), (path, h)
            assert names[0].encode() not in body
    assert get(url + "v1/healthz")[0] == 200	# healthz needs none
    assert auth["Authorization"][7:] not in d.read_log()
    assert d.stop() == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_requests_naming_another_host_or_writing_are_refused(daemon_factory, user_mode):
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own
    name as Host, and gets 421; only the listener's address or localhost, with
    its port, are answered.  Nothing but GET and HEAD, and no bodies."""
    d = daemon_factory(user_mode=user_mode).start()
    url, auth = api(d)
    port = url.rstrip("/").rsplit(":", 1)[1]
    for host in ("evil.example", "evil.example:" + port, "127.0.0.1", "127.0.0.1:1",
                 "localhost", "127.0.0.2:" + port, ""):
        for path in ("v1/healthz", "v1/status"):
            code, _, body = get(url + path, headers=dict(auth, Host=host))
            assert code == 421, (host, path, code, body)
    for host in ("127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port):
        assert get(url + "v1/status", headers=dict(auth, Host=host))[0] == 200, host
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        code, hdrs, _ = get(url + "v1/status", method=method, headers=auth)
        assert code == 405 and hdrs["Allow"] == "GET, HEAD", (method, code)
    code, _, _ = get(url + "v1/status", method="POST", headers=auth, data=b"x" * 100)
    assert code in (405, 413), code
    code, _, body = get(url + "v1/status", method="HEAD", headers=auth)
    assert code == 200 and body == b""
    assert d.stop() == 0


SAMPLE = re.compile(r'^([a-z_]+)(\{([a-z_]+="(\\.|[^"\\])*",?)*\})? -?[0-9]+(\.[0-9]+)?$')


def uploaded(text):
    m = re.search(r'^vaultsync_uploaded_bytes_total\{vault="v"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def test_metrics_in_the_prometheus_text_format(daemon_factory, workdir):
    """/metrics: every line a comment or a sample in the exposition format,
    each family with HELP and TYPE before its samples, counters named _total,
    times as _timestamp_seconds, and the values the snapshot holds."""
    from conftest import wait_for
    from test_remote_dir import remote_env
    e = remote_env(daemon_factory, workdir, os.geteuid() != 0)
    try:
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        e.ctl("sync", "v")
        url, auth = api(e.d)
        def pushed():
            code, hdrs, body = get(url + "metrics", headers=auth)
            assert code == 200 and hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
            text = body.decode()
            return text if 'vaultsync_vault_remote_current{vault="v"} 1' in text else None
        text = wait_for(pushed, timeout=10, what="metrics of the pushed vault")
        typed, helped = {}, set()
        for line in text.splitlines():
            if line.startswith("# HELP "):
                helped.add(line.split()[2])
            elif line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                assert name in helped and kind in ("gauge", "counter", "histogram"), line
                assert name.endswith("_total") == (kind == "counter"), line
                typed[name] = kind
            else:
                m = SAMPLE.match(line)
                family = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if m else None
                assert m and (m.group(1) in typed or typed.get(family) == "histogram"), line
        assert re.search(r'^vaultsync_build_info\{version="0\.1\.0"\} 1$', text, re.M)
        assert 'vaultsync_vault_state{vault="v",state="unlocked"} 1' in text
        assert 'vaultsync_vault_state{vault="v",state="locked"} 0' in text
        st = e.vstate()
        saved = re.search(r'^vaultsync_vault_last_save_timestamp_seconds\{vault="v"\} (\d+)$',
                          text, re.M)
        assert saved and abs(int(saved.group(1)) - time.time()) < 120, saved
        assert re.search(r'^vaultsync_vault_archive_bytes\{vault="v"\} %d$' % st["archive_bytes"],
                         text, re.M)
        assert re.search(r'^vaultsync_child_up\{child="uploader"\} 1$', text, re.M)
        assert re.search(r'^vaultsync_child_restarts_total\{child="watcher"\} 0$', text, re.M)
        assert re.search(r'^vaultsync_healthy 1$', text, re.M)
        for proc in ("parent", "watcher", "uploader", "statusd"):
            rss = re.search(r'^process_resident_memory_bytes\{process="%s"\} (\d+)$' % proc,
                            text, re.M)
            fds = re.search(r'^process_open_fds\{process="%s"\} (\d+)$' % proc, text, re.M)
            assert rss and int(rss.group(1)) > 100000 and fds and int(fds.group(1)) >= 3, proc
            assert re.search(r'^process_cpu_seconds_total\{process="%s"\} [0-9.]+$' % proc,
                             text, re.M), proc
        # promtool, Prometheus's own checker, finds nothing to say.
        r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
        # Counters rise as ticks happen: one more sync is one more ctl tick that went ok.
        def ctl_ok(t):
            m = re.search(r'^vaultsync_ticks_total\{vault="v",trigger="ctl",outcome="ok"\} (\d+)$',
                          t, re.M)
            return int(m.group(1)) if m else 0
        before, up_before = ctl_ok(text), uploaded(text)
        change_file = os.path.join(e.path, "more")
        with open(change_file, "w") as f:
            f.write("x" * 5000)
        if not e.user_mode:
            os.chown(change_file, *e.owner)
        e.ctl("sync", "v")
        text = wait_for(lambda: (lambda t: t if ctl_ok(t) == before + 1 else None)(
            get(url + "metrics", headers=auth)[2].decode()), what="the counter to rise")
        assert uploaded(text) > up_before
        assert re.search(r'^vaultsync_tick_duration_seconds_count\{vault="v"\} [1-9]', text, re.M)
        # The remote's history copies, counted once after the first push.
        wait_for(lambda: e.vstate()["history_count"] is not None, what="the history count")
        copies = e.vstate()["history_count"]
        hdir = os.path.join(e.remote, "v", "history")
        assert copies == (len(os.listdir(hdir)) if os.path.isdir(hdir) else 0), copies
        wait_for(lambda: re.search(r'^vaultsync_vault_history_copies\{vault="v"\} %d$' % copies,
                                   get(url + "metrics", headers=auth)[2].decode(), re.M),
                 what="the history count in /metrics")
        assert e.d.stop() == 0
    finally:
        e.close()



@pytest.mark.parametrize("user_mode", MODES)
def test_tick_history_of_a_vault(daemon_factory, workdir, user_mode):
    """/v1/vaults/NAME/ticks: the vault's last ticks, oldest first, as their
    tick_end records say them; ?limit=K the last K; kept across a restart of
    statusd (the parent sends it what it keeps).  The watcher waits a minute:
    the ticks are the syncs'."""
    from conftest import wait_for
    from test_remote_dir import remote_env
    e = remote_env(daemon_factory, workdir, user_mode,
                   conf="StatusTickHistory 3\nWatcherDebounce 60s\n")
    try:
        e.d.start()
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        for i in range(4):
            with open(os.path.join(e.path, "f%d" % i), "w") as f:
                f.write("tick %d\n" % i)
            e.ctl("sync", "v")
        url, auth = api(e.d)
        ends = [r for r in e.d.records() if r.get("event") in ("tick_end", "tick_skip")
                and r["vault"] == "v"]

        def ticks(q=""):
            code, _, body = get(url + "v1/vaults/v/ticks" + q, headers=auth)
            assert code == 200, (code, body)
            return json.loads(body)["ticks"]
        got = wait_for(lambda: (lambda t: t if t and t[-1]["tick_index"] ==
                                ends[-1]["tick_index"] else None)(ticks()),
                       what="the last tick in the history")
        assert [t["tick_index"] for t in got] == [r["tick_index"] for r in ends[-3:]]
        last, rec = got[-1], ends[-1]
        assert last["trigger"] == "ctl" and last["outcome"] == rec["outcome"] == "ok"
        assert last["sync"]["saved"] is True and last["sync"]["pushed"] is True
        assert last["sync"]["sha256"] == rec["sync"]["sha256"] and len(rec["sync"]["sha256"]) == 64
        assert last["sync"]["archive_bytes"] == rec["sync"]["archive_bytes"]
        assert last["duration_ms"] == rec["duration_ms"]
        assert last["unchanged"] is rec["unchanged"] is False
        assert last["scan_us"] == rec["scan_us"] and isinstance(last["scan_us"], int)
        assert [t["tick_index"] for t in ticks("?limit=1")] == [rec["tick_index"]]
        for bad in ("?limit=0", "?limit=-1", "?limit=x", "?limit=100001"):
            assert get(url + "v1/vaults/v/ticks" + bad, headers=auth)[0] == 400, bad
        assert get(url + "v1/vaults/nope/ticks", headers=auth)[0] == 404
        assert get(url + "v1/vaults/v/ticks")[0] == 401
        # A restarted statusd serves the same history.
        os.kill(e.d.child_pids()["statusd"], 9)
        wait_for(lambda: e.d.children()["statusd"]["restarts"] == 1 and
                 e.d.children()["statusd"]["state"] == "running", what="statusd restart")
        wait_for(lambda: [t["tick_index"] for t in ticks()] ==
                 [r["tick_index"] for r in ends[-3:]], what="the history after a restart")
        assert e.d.stop() == 0
    finally:
        e.close()


@pytest.mark.parametrize("user_mode", MODES)
def test_status_page_is_self_contained_and_guarded(daemon_factory, user_mode):
    """/ is one page built into statusd: its script and style come from the
    same origin, nothing from elsewhere; no other site may frame it; it takes
    the token from the URL fragment and removes it from the address bar."""
    d = daemon_factory(user_mode=user_mode).start()
    url, _ = api(d)
    code, hdrs, page = get(url)
    assert code == 200 and hdrs["Content-Type"] == "text/html; charset=utf-8"
    csp = hdrs["Content-Security-Policy"]
    for part in ("default-src 'none'", "script-src 'self'", "connect-src 'self'",
                 "frame-ancestors 'none'"):
        assert part in csp, csp
    assert hdrs["X-Frame-Options"] == "DENY" and hdrs["Cache-Control"] == "no-store"
    refs = re.findall(rb'(?:src|href)="([^"]*)"', page)
    assert sorted(refs) == [b"/ui.css", b"/ui.js"], refs
    code, hdrs, js = get(url + "ui.js")
    assert code == 200 and hdrs["Content-Type"].startswith("text/javascript")
    code, hdrs, css = get(url + "ui.css")
    assert code == 200 and hdrs["Content-Type"].startswith("text/css")
    assert b"prefers-color-scheme: dark" in css and b"max-width" in css
    # Only same-origin API paths; the fragment is read, then taken out of the address bar.
    assert re.findall(rb'get\("(/[^"]*)"', js) == [b"/v1/status", b"/v1/vaults/", b"/v1/events"]
    assert b"/ticks?limit=" in js
    assert b"history.replaceState" in js and b"location.hash" in js
    assert b"innerHTML" not in js and b"eval(" not in js
    assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", page + js + css)
    # The page's files are served without the token, and only to this listener's name.
    assert get(url, headers={"Host": "evil.example"})[0] == 421
    assert d.stop() == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_status_ui_prints_the_url_with_the_token(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    url, auth = api(d)
    r = d.ctl("status", "--ui")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == url + "#t=" + auth["Authorization"][len("Bearer "):]
    assert d.ctl("status", "--ui", "--json", check=False).returncode == 64
    if IS_ROOT and not user_mode:
        # A ControlGroup member may see status, not the token.
        from test_ctl import run_ctl
        import grp
        r = run_ctl(d.sock, "status", "--ui", user="vstest",
                    groups=[grp.getgrnam("vaultsync").gr_gid])
        assert r.returncode == 77 and "permission denied" in r.stderr, r.stdout + r.stderr
        assert auth["Authorization"][7:] not in r.stdout + r.stderr
    assert d.stop() == 0
    r = d.ctl("status", "--ui", check=False)
    assert r.returncode == 2, r.stdout + r.stderr


@pytest.mark.parametrize("user_mode", MODES)
def test_events_in_order_long_polled_and_as_event_stream(daemon_factory, workdir, user_mode):
    """/v1/events: ids 1, 2, 3... without gaps; ?since=N answers what came after
    N; with ?timeout=S and nothing newer the request waits for the next event
    (a tick here); EventSource's text/event-stream with Last-Event-ID."""
    import threading
    from conftest import wait_for
    from test_remote_dir import remote_env
    e = remote_env(daemon_factory, workdir, user_mode, conf="WatcherDebounce 60s\n")
    try:
        e.d.start()
        url, auth = api(e.d)
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        e.ctl("sync", "v")

        def events(q="", headers=None, timeout=5):
            code, hdrs, body = get(url + "v1/events" + q, headers=dict(auth, **(headers or {})))
            assert code == 200, (code, body)
            return hdrs, body
        def seen(d):
            return d if any(x["type"] == "tick" for x in d["events"]) and any(
                x["type"] == "vault_state" and x["to"] == "unlocked" for x in d["events"]) \
                else None
        doc = wait_for(lambda: seen(json.loads(events()[1])), what="tick and state events")
        ids = [x["id"] for x in doc["events"]]
        assert ids == list(range(1, len(ids) + 1)) and doc["next"] == ids[-1] + 1, doc
        assert doc["dropped"] == 0 and doc["instance"]
        tick = [x for x in doc["events"] if x["type"] == "tick"][-1]
        assert tick["vault"] == "v" and tick["trigger"] == "ctl" and tick["outcome"] == "ok"
        assert [x for x in doc["events"] if x["type"] == "vault_state"][0]["from"] == "locked"
        # Nothing newer: an answer at once without timeout, a wait with it.
        last = doc["next"] - 1
        assert json.loads(events("?since=%d" % last)[1])["events"] == []
        got = {}

        def wait():
            got["t0"] = time.monotonic()
            got["doc"] = json.loads(events("?since=%d&timeout=30" % last)[1])
            got["t1"] = time.monotonic()
        th = threading.Thread(target=wait)
        th.start()
        time.sleep(1.5)
        assert th.is_alive(), got		# still waiting
        e.ctl("sync", "v")
        th.join(20)
        assert not th.is_alive()
        new = got["doc"]["events"]
        assert new and new[0]["id"] == last + 1 and got["t1"] - got["t0"] < 25, got
        # A wait that times out answers with nothing.
        t0 = time.monotonic()
        nxt = got["doc"]["next"] - 1
        quiet = json.loads(events("?since=%d&timeout=1" % (nxt + 1000))[1])
        assert quiet["events"] == [] and 0.8 < time.monotonic() - t0 < 10
        # Events it did not ask for (older than its since) do not end its wait early.
        far = {}

        def wait_far():
            t = time.monotonic()
            far["doc"] = json.loads(events("?since=%d&timeout=3" % (nxt + 1000))[1])
            far["took"] = time.monotonic() - t
        th = threading.Thread(target=wait_far)
        th.start()
        time.sleep(0.5)
        change = os.path.join(e.path, "far")
        with open(change, "w") as f:
            f.write("x")
        if not e.user_mode:
            os.chown(change, *e.owner)
        e.ctl("sync", "v")
        th.join(20)
        assert far["doc"]["events"] == [] and far["took"] > 2.5, far
        # The same as server-sent events, from Last-Event-ID.
        hdrs, body = events(headers={"Accept": "text/event-stream", "Last-Event-ID": str(last)})
        assert hdrs["Content-Type"] == "text/event-stream"
        text = body.decode()
        assert text.startswith("retry: ")
        sse_ids = [int(l[4:]) for l in text.splitlines() if l.startswith("id: ")]
        assert sse_ids and sse_ids[0] == last + 1 and sse_ids == sorted(sse_ids)
        for bad in ("?since=x", "?timeout=61", "?since=-1"):
            code, _, _ = get(url + "v1/events" + bad, headers=auth)
            assert code == 400, bad
        assert get(url + "v1/events")[0] == 401
        assert e.d.stop() == 0
    finally:
        e.close()


def test_events_follow_fifty_ticks_then_drop_then_survive_a_statusd_kill(daemon_factory, workdir):
    """A client following /v1/events sees all 50 ticks of 50 synced writes in
    order, ids without a gap; one that fell further behind than the ring holds
    (10 x StatusTickHistory events) gets a dropped count; a statusd killed in
    the middle of a long poll comes back as another instance, and the client
    starts again from since=0 and finds the ticks the parent kept."""
    import threading
    from conftest import wait_for
    from test_remote_dir import remote_env
    e = remote_env(daemon_factory, workdir, os.geteuid() != 0,
                   conf="StatusTickHistory 2\nWatcherDebounce 60s\n")
    try:
        e.d.start()
        url, auth = api(e.d)
        e.ctl("init", "v", "--passphrase-file", e.passfile)
        first = json.loads(get(url + "v1/events", headers=auth)[2])
        seen, stop = [], threading.Event()

        def follow(since):
            while not stop.is_set():
                code, _, body = get(url + "v1/events?since=%d&timeout=2" % since, headers=auth)
                doc = json.loads(body)
                assert code == 200 and doc["dropped"] == 0, doc
                seen.extend(doc["events"])
                since = doc["next"] - 1
        th = threading.Thread(target=follow, args=(first["next"] - 1,))
        th.start()
        for i in range(50):
            with open(os.path.join(e.path, "w%02d" % i), "w") as f:
                f.write("write %d\n" % i)
            e.ctl("sync", "v")
        last_tick = max(r["tick_index"] for r in e.d.records() if r.get("event") == "tick_end")
        wait_for(lambda: any(x["type"] == "tick" and x["tick_index"] == last_tick for x in seen),
                 timeout=20, what="the last tick's event")
        stop.set()
        th.join(10)
        ids = [x["id"] for x in seen]
        assert ids == list(range(first["next"], first["next"] + len(ids))), ids
        ctl_ticks = [x["tick_index"] for x in seen if x["type"] == "tick" and x["trigger"] == "ctl"]
        assert len(ctl_ticks) >= 50 and ctl_ticks == sorted(ctl_ticks), ctl_ticks
        # From the start: more happened than the 20 events kept.
        doc = json.loads(get(url + "v1/events", headers=auth)[2])
        assert doc["dropped"] == doc["next"] - 1 - len(doc["events"]) > 0, doc
        assert len(doc["events"]) == 20
        assert [x["id"] for x in doc["events"]] == list(range(doc["next"] - 20, doc["next"]))
        # statusd killed while a client waits.
        errors = []

        def poll():
            try:
                get(url + "v1/events?since=%d&timeout=30" % (doc["next"] - 1), headers=auth)
            except Exception as ex:	# the connection dies with statusd
                errors.append(ex)
        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.5)
        os.kill(e.d.child_pids()["statusd"], 9)
        th.join(15)
        assert not th.is_alive() and errors, errors
        wait_for(lambda: e.d.children()["statusd"]["state"] == "running" and
                 e.d.children()["statusd"]["restarts"] == 1, what="statusd restart")
        again = wait_for(lambda: (lambda d: d if any(x["type"] == "tick" and x["tick_index"] ==
                                                     last_tick for x in d["events"]) else None)(
            json.loads(get(url + "v1/events", headers=auth)[2])), what="the ticks again")
        assert again["instance"] != doc["instance"]
        assert e.d.stop() == 0
    finally:
        e.close()


def test_a_huge_header_is_refused_and_statusd_lives_on(daemon_factory):
    import socket
    d = daemon_factory(user_mode=os.geteuid() != 0).start()
    url, auth = api(d)
    host, port = url.rstrip("/").rsplit("/", 1)[1].rsplit(":", 1)
    pid = d.child_pids()["statusd"]
    s = socket.create_connection((host, int(port)), timeout=10)
    try:
        s.sendall(("GET /v1/status HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: %s\r\n"
                   % (host, port, auth["Authorization"])).encode())
        try:
            s.sendall(b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass		# refused before it was all sent
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    finally:
        s.close()
    assert answer == b"" or answer.split(b" ")[1] in (b"413", b"431", b"400"), answer[:80]
    assert b"vaults" not in answer
    assert get(url + "v1/healthz")[0] == 200
    assert d.child_pids()["statusd"] == pid
    assert d.stop() == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_healthz_names_rejected_credentials_and_a_failing_push(daemon_factory, workdir, s3,
                                                              user_mode):
    """Credentials RGW refuses (403): 503 naming the file as rejected and the
    vault whose push failed, as vaultsyncctl status says; the right secret
    written and reloaded: 200 again, without a restart."""
    from conftest import wait_for
    from test_remote_s3 import S3Env
    env = S3Env(daemon_factory, workdir, user_mode, s3, secret="x" * 40)
    e = env.e
    try:
        e.d.start()
        pid = e.d.proc.pid
        url, _ = api(e.d)
        e.ctl("init", "v", "--passphrase-file", e.passfile, check=False)
        r = e.d.ctl("sync", "v", check=False)
        assert r.returncode == 1, r.stdout + r.stderr

        def unhealthy():
            code, body = _healthz(url)
            st = e.d.status()
            if code != 503 or st["healthy"]:
                return None
            reasons = body["reasons"]
            return reasons if any(x.startswith("credentials %s: rejected" % env.creds)
                                  for x in reasons) and \
                any(x.startswith("vault v: ") for x in reasons) else None
        reasons = wait_for(unhealthy, timeout=20, what="healthz 503 naming both")
        assert [c["state"] for c in e.d.status()["credentials"]] == ["rejected"], reasons
        env.set_secret(s3.secret_key)
        e.d.ctl("reload")
        wait_for(lambda: e.d.ctl("sync", "v", check=False).returncode == 0, timeout=30,
                 interval=1, what="a push with the right secret")
        wait_for(lambda: _healthz(url)[0] == 200 and e.d.status()["healthy"], timeout=20,
                 what="healthz 200 again")
        assert e.d.proc.pid == pid and e.d.stop() == 0
    finally:
        e.close()


@pytest.mark.slow
def test_statusd_memory_with_ten_vaults_and_full_tick_rings(daemon_factory, workdir):
    """Ten vaults, a hundred ticks each (the default StatusTickHistory) and the
    events they made: statusd's resident memory stays under 8 MiB."""
    import threading
    from conftest import wait_for
    names = ["m%d" % i for i in range(10)]
    conf = "".join("Vault %s\n  Path %s/%s\n  Mount no\n" % (n, workdir, n) for n in names)
    for n in names:
        os.makedirs(os.path.join(workdir, n))
    d = daemon_factory(user_mode=os.geteuid() != 0, vault_conf=conf,
                       extra_conf="StatusTickHistory 100\n").start()
    url, auth = api(d)

    def ticks_of(n):
        for _ in range(100):	# locked: each sync is a skipped tick, a record all the same
            d.ctl("sync", n, check=False)
    ts = [threading.Thread(target=ticks_of, args=(n,)) for n in names]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for n in names:
        wait_for(lambda: len(json.loads(get(url + "v1/vaults/%s/ticks" % n,
                                            headers=auth)[2])["ticks"]) == 100,
                 what="a full ring for " + n)
    assert json.loads(get(url + "v1/events", headers=auth)[2])["dropped"] > 0	# full too
    get(url + "metrics", headers=auth)
    time.sleep(1.5)		# what answering those took is given back within a second
    with open("/proc/%d/status" % d.child_pids()["statusd"]) as f:
        mem = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith("VmRSS:") or
               l.startswith("RssAnon:") or l.startswith("RssFile:")}
    assert mem["VmRSS"] < 8 * 1024, mem
    assert d.stop() == 0
