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
