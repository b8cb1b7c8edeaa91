"""Supervision: restarts, protocol violations, signals, single instance."""
import fcntl
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD, IS_ROOT, MODES, binpath, pid_alive, wait_for


@pytest.mark.parametrize("user_mode", MODES)
@pytest.mark.parametrize("victim", ["watcher", "uploader", "statusd"])
def test_kill9_child_restarted_within_1s(daemon_factory, user_mode, victim):
    d = daemon_factory(user_mode=user_mode).start()
    old = d.child_pids()[victim]
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)

    def restarted():
        c = d.children()[victim]
        return c if c["state"] == "running" and c["pid"] not in (0, old) else None
    c = wait_for(restarted, timeout=5, what="%s restart" % victim)
    assert time.monotonic() - t0 < 1.0
    assert c["restarts"] == 1
    assert "signal 9" in c["last_reason"]
    others = {n: p for n, p in d.child_pids().items() if n != victim}
    assert all(pid_alive(p) for p in others.values())
    assert d.stop() == 0


def evil_libexec(mode, role):
    """build/evil/: the substitute for one role, the real binaries for the others."""
    evil = os.path.join(BUILD, "evil")
    shutil.rmtree(evil, ignore_errors=True)
    os.makedirs(evil)
    os.chmod(evil, 0o755)
    for r in ("watcher", "uploader", "statusd"):
        dst = os.path.join(evil, "vaultsync-" + r)
        shutil.copy2(binpath("vs-evil") if r == role else binpath("vaultsync-" + r), dst)
    with open(os.path.join(evil, "evil-mode"), "w") as f:
        f.write(mode + "\n")
    return evil


@pytest.mark.parametrize("user_mode", MODES)
@pytest.mark.parametrize("mode,why", [
    ("malformed", "payload length does not match its type"),
    ("unpermitted", "not permitted"),
    ("extrafd", "unexpected fd"),
])
def test_misbehaving_child_killed_and_restarted(daemon_factory, user_mode, mode, why):
    evil_libexec(mode, "watcher")
    d = daemon_factory(user_mode=user_mode, binary="vaultsyncd-evil").start()
    # It breaks the protocol at once: status may find it between a death and a restart.
    first = wait_for(lambda: d.child_pids().get("watcher"), timeout=5, interval=0.01,
                     what="a watcher pid")

    def punished():		# ...and the one seen is gone too
        c = d.children()["watcher"]
        return c if c["violations"] >= 1 and c["restarts"] >= 1 and c["pid"] != first else None
    c = wait_for(punished, timeout=5, what="violation and restart")
    assert why in c["last_reason"]
    assert not pid_alive(first)
    assert d.proc.poll() is None, "the parent must keep running"
    assert any(r.get("proc") == "parent" and "broke the protocol" in r["msg"]
               for r in d.records())
    # The others were never disturbed.
    assert d.children()["uploader"]["restarts"] == 0
    assert d.stop() == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_sigterm_clean_exit(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    pids = list(d.child_pids().values())
    lock = os.path.join(d.run, "vaultsyncd.lock")
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert rc == 0
    assert not any(pid_alive(p) for p in pids)
    assert not os.path.exists(d.sock)
    assert not os.path.exists(os.path.join(d.run, "daemon.json"))
    with open(lock) as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)	# raises if still held


@pytest.mark.parametrize("user_mode", MODES)
def test_second_signal_forces_exit_130(daemon_factory, user_mode):
    # A statusd that ignores SIGTERM and EOF holds the shutdown up.
    evil_libexec("hang", "statusd")
    d = daemon_factory(user_mode=user_mode, binary="vaultsyncd-evil").start()
    pids = list(d.child_pids().values())
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None, "shutdown should be held up by the hanging child"
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGINT)
    rc = d.proc.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert rc == 130
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=1, what="children gone")


@pytest.mark.parametrize("user_mode", MODES)
def test_ctl_stop(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    r = d.ctl("stop")
    assert r.returncode == 0, r.stderr
    assert d.proc.wait(5) == 0


@pytest.mark.parametrize("user_mode", MODES)
def test_second_instance_exits_73_naming_pid(daemon_factory, user_mode):
    d = daemon_factory(user_mode=user_mode).start()
    r = subprocess.run(d.argv(), capture_output=True, text=True, env=d.ident.env(), timeout=10)
    assert r.returncode == 73
    assert "another vaultsyncd is running (pid %d" % d.proc.pid in r.stdout + r.stderr
    assert d.status()["daemon"]["pid"] == d.proc.pid
    assert d.stop() == 0


@pytest.mark.parametrize("var", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
def test_refuses_credentials_in_environment(daemon_factory, var):
    d = daemon_factory(user_mode=not IS_ROOT, env_extra={var: "x"})
    r = subprocess.run(d.argv(), capture_output=True, text=True, env=d.ident.env({var: "x"}),
                       timeout=10)
    assert r.returncode == 64
    assert var in r.stderr


def test_sighup_reload_keeps_running(daemon_factory, workdir):
    d = daemon_factory(user_mode=not IS_ROOT).start()
    before = d.child_pids()
    with open(d.conf, "a") as f:
        f.write("Vault second\n  Path %s\n  Mount no\n" % d.vault)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(d.status()["vaults"]) == 2, timeout=5, what="reload")
    assert d.child_pids() == before
    # A broken config is refused and the running one kept.
    with open(d.conf, "a") as f:
        f.write("NoSuchKeyword 1\n")
    r = d.ctl("reload", check=False)
    assert r.returncode == 64
    assert "NoSuchKeyword" in r.stderr and "old configuration kept" in r.stderr
    assert len(d.status()["vaults"]) == 2
    assert d.stop() == 0


def test_sandbox_step_failure_refuses_to_start(daemon_factory):
    """Fail closed: a child whose Landlock step fails stops the startup (71);
    --insecure-no-sandbox overrides it, loudly."""
    d = daemon_factory(user_mode=True)
    wrap = [binpath("vs-policytest"), "landlock-exhaust"]
    r = subprocess.run(d.ident.wrap(wrap + d.argv()[len(d.ident.wrap([])):]),
                       capture_output=True, text=True, env=d.ident.env(), timeout=30)
    assert r.returncode == 71, r.stdout + r.stderr
    assert "landlock_restrict_self" in r.stdout
    assert "refusing to run unsandboxed" in r.stdout
    d2 = daemon_factory(user_mode=True, args=["--insecure-no-sandbox"])
    argv = d2.ident.wrap(wrap + d2.argv()[len(d2.ident.wrap([])):])
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=d2.ident.env())
    try:
        d2.proc = p
        st = d2.wait_ready()
        assert all(c["state"] == "running" for c in st["children"])
    finally:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=10)[0]
    assert "INSECURE" in out


@pytest.mark.root
def test_unsafe_chroot_refused(daemon_factory, workdir):
    """A PrivsepChroot that is not empty is refused before any child starts (73)."""
    d = daemon_factory(user_mode=False)
    bad = os.path.join(workdir, "notempty")
    os.makedirs(os.path.join(bad, "x"))
    with open(d.conf, "a") as f:
        f.write("\n")
    conf = open(d.conf).read().replace("LogFormat json", "LogFormat json\nPrivsepChroot %s" % bad)
    with open(d.conf, "w") as f:
        f.write(conf)
    r = subprocess.run(d.argv(), capture_output=True, text=True, env=d.ident.env(), timeout=20)
    assert r.returncode == 73
    assert "is not empty" in r.stdout + r.stderr


def test_trap_mode_names_the_forbidden_syscall(daemon_factory):
    """Under -d a child's forbidden call reaches the log by name, then it is restarted."""
    evil_libexec("trap", "watcher")
    d = daemon_factory(user_mode=not IS_ROOT, binary="vaultsyncd-evil").start()
    wait_for(lambda: d.children()["watcher"]["restarts"] >= 1, timeout=5, what="restart")
    msgs = [r["msg"] for r in d.records()]
    assert any("seccomp stopped forbidden system call socket (41)" in m for m in msgs), msgs
    assert d.proc.poll() is None
    d.stop()
    # Expected here: keep the harness's own "no seccomp trap" check from firing.
    open(d.log, "w").close()
