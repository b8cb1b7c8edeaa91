"""Process model: four processes, each child confined as DESIGN §2 says."""
import grp
import os
import pwd
import signal
import stat
import subprocess

import pytest

from conftest import IS_ROOT, MODES, binpath, pid_alive, proc_status, wait_for, Identity

CHILDREN = ("watcher", "uploader", "statusd")
# Seccomp tables: the three long-lived children and the short-lived decoder.
POLICIES = CHILDREN + ("decoder",)


def fd_targets(pid):
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
    return out


@pytest.mark.root
def test_system_mode_four_confined_processes(daemon_factory):
    d = daemon_factory(user_mode=False, debug=False).start()
    pids = d.child_pids()
    assert sorted(pids) == sorted(CHILDREN)
    # Four processes: the parent and exactly its three children.
    kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(d.proc.pid)],
                          capture_output=True, text=True).stdout.split()
    assert sorted(int(k) for k in kids) == sorted(pids.values())
    pw = pwd.getpwnam("_vaultsync")
    chroot = os.path.join(d.run, "empty")
    parent_stderr = os.readlink("/proc/%d/fd/2" % d.proc.pid)
    for name, pid in pids.items():
        st = proc_status(pid)
        assert st["Uid"].split() == [str(pw.pw_uid)] * 4, name
        assert st["Gid"].split() == [str(pw.pw_gid)] * 4, name
        assert st["Groups"] == "", name
        for cap in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert int(st[cap], 16) == 0, (name, cap, st[cap])
        assert st["NoNewPrivs"] == "1", name
        assert st["Seccomp"] == "2", name
        assert os.readlink("/proc/%d/root" % pid) == chroot, name
        assert os.listdir(chroot) == []
        fds = fd_targets(pid)
        assert fds[0] == "/dev/null" and fds[1] == "/dev/null", (name, fds)
        assert fds[2] == parent_stderr, (name, fds)
        assert fds[3].startswith("socket:") and fds[4].startswith("socket:"), (name, fds)
        job = {k: v for k, v in fds.items() if k >= 5}
        if name == "watcher":
            assert job == {5: "anon_inode:inotify"}, job
        elif name == "uploader":
            # Its dir: remote, and nothing else (S3 remotes need no fd).
            assert job == {8: os.path.join(d.dir, "remote")}, job
        else:
            # The passed listening socket, and libmicrohttpd's epoll set.
            assert job[5].startswith("socket:"), job
            assert set(job.values()) - {job[5]} <= {"anon_inode:[eventpoll]"}, job
            assert len(job) <= 2, job
    assert d.stop() == 0


CAP_KILL, CAP_SETPCAP = 5, 8


@pytest.mark.root
@pytest.mark.slow
def test_system_mode_without_setpcap_kill_or_chroot(daemon_factory):
    """What a hardened service manager may leave the parent: no CAP_SETPCAP
    (the children cannot narrow the bounding set and keep it; no_new_privs,
    verified, leaves nothing an exec could gain from it), no CAP_KILL (the
    parent signals them with their uid as its effective one), and no
    chroot(2) (PrivsepChroot none: Landlock confines them instead)."""
    d = daemon_factory(user_mode=False, debug=False, extra_conf="PrivsepChroot none\n")
    d.start(prefix=["setpriv", "--bounding-set", "-setpcap,-kill", "--"])
    bnd = int(proc_status(d.proc.pid)["CapBnd"], 16)
    assert not bnd & (1 << CAP_KILL) and not bnd & (1 << CAP_SETPCAP), hex(bnd)
    pw = pwd.getpwnam("_vaultsync")
    pids = d.child_pids()
    for name, pid in pids.items():
        st = proc_status(pid)
        assert st["Uid"].split() == [str(pw.pw_uid)] * 4, name
        for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            assert int(st[cap], 16) == 0, (name, cap, st[cap])
        assert int(st["CapBnd"], 16) == bnd, (name, st["CapBnd"])
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2", name
        assert os.readlink("/proc/%d/root" % pid) == "/", name
    # A child that stops answering is killed and replaced, without CAP_KILL.
    old = pids["statusd"]
    os.kill(old, signal.SIGSTOP)
    try:
        wait_for(lambda: d.children()["statusd"]["restarts"] == 1 and
                 d.children()["statusd"]["state"] == "running", timeout=40, interval=0.5,
                 what="a statusd that does not answer to be replaced")
        wait_for(lambda: not pid_alive(old), what="the stopped statusd to be killed")
    finally:
        if pid_alive(old):
            os.kill(old, signal.SIGCONT)
    assert not any("pidfd_send_signal" in r.get("msg", "") for r in d.records())
    # The parent still has its own uid 0 in every field.
    assert proc_status(d.proc.pid)["Uid"].split() == ["0"] * 4
    assert d.stop() == 0


@pytest.mark.root
def test_without_chroot_landlock_is_required(daemon_factory):
    """Fail closed: with PrivsepChroot none, a child that cannot apply its
    Landlock ruleset stops the start (71)."""
    d = daemon_factory(user_mode=False, extra_conf="PrivsepChroot none\n")
    r = subprocess.run([binpath("vs-policytest"), "landlock-exhaust"] + d.argv(),
                       capture_output=True, text=True, env=d.ident.env(), timeout=30)
    assert r.returncode == 71, r.stdout + r.stderr
    assert "landlock_restrict_self" in r.stdout, r.stdout
    # Control: the chroot way does not depend on Landlock for these children.
    d2 = daemon_factory(user_mode=False, vault_conf="Vault demo\n  Path %s\n  Mount no\n"
                        % d.vault, workdir=d.dir + "/2")
    os.makedirs(d2.dir, exist_ok=True)
    p = subprocess.Popen([binpath("vs-policytest"), "landlock-exhaust"] + d2.argv(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=d2.ident.env())
    d2.proc = p
    try:
        st = d2.wait_ready()
        assert all(c["state"] == "running" for c in st["children"])
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
    assert p.returncode == 0


def test_user_mode_confined(daemon_factory):
    d = daemon_factory(user_mode=True, debug=False).start()
    me = d.ident.uid
    for name, pid in d.child_pids().items():
        st = proc_status(pid)
        assert st["Uid"].split()[0] == str(me), name
        assert st["NoNewPrivs"] == "1", name
        assert st["Seccomp"] == "2", name
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, name
    assert d.stop() == 0


def test_user_mode_landlock_denies_home(workdir):
    """The Landlock ruleset the children apply in user mode denies opening $HOME."""
    ident = Identity(True)
    home = ident.home
    # Control: without the ruleset the same user can open it.
    assert os.path.isdir(home)
    r = subprocess.run(ident.wrap(["test", "-r", home]), env=ident.env())
    assert r.returncode == 0
    r = subprocess.run(ident.wrap([binpath("vs-policytest"), "landlock", home]),
                       capture_output=True, text=True, env=ident.env())
    assert r.stdout.strip() == "RESULT errno EACCES", r.stdout + r.stderr


@pytest.mark.parametrize("role", POLICIES)
@pytest.mark.parametrize("call,expect", [
    ("openat", "RESULT errno EACCES"),
    ("execve", "RESULT killed SIGSYS"),
    ("ptrace", "RESULT killed SIGSYS"),
    ("socket-unix", "RESULT killed SIGSYS"),
    ("fork", "RESULT killed SIGSYS"),
    ("kill-parent", "RESULT killed SIGSYS"),
])
def test_child_policy_denies(role, call, expect):
    r = subprocess.run([binpath("vs-policytest"), role, call], capture_output=True, text=True)
    assert r.stdout.strip() == expect, r.stdout + r.stderr


@pytest.mark.parametrize("role,expect", [
    ("watcher", "RESULT killed SIGSYS"),
    ("statusd", "RESULT killed SIGSYS"),
    ("decoder", "RESULT killed SIGSYS"),
    ("uploader", "RESULT allowed"),	# its job is the network
])
def test_new_inet_socket(role, expect):
    r = subprocess.run([binpath("vs-policytest"), role, "socket-inet"], capture_output=True,
                       text=True)
    assert r.stdout.strip() == expect, r.stdout + r.stderr


@pytest.mark.parametrize("role,expect", [
    ("watcher", "RESULT killed SIGSYS"),
    ("uploader", "RESULT killed SIGSYS"),
    ("statusd", "RESULT killed SIGSYS"),
    ("decoder", "RESULT allowed"),	# its digest thread; fork stays refused (above)
])
def test_thread(role, expect):
    r = subprocess.run([binpath("vs-policytest"), role, "thread"], capture_output=True,
                       text=True)
    assert r.stdout.strip() == expect, r.stdout + r.stderr


@pytest.mark.parametrize("fd,expect", [
    ("7", "RESULT errno EBADF"),	# the data pipe's slot (closed here): past the filter
    ("3", "RESULT killed SIGSYS"),	# any other fd: the channel, say
])
def test_decoder_vmsplice_only_on_the_data_pipe(fd, expect):
    r = subprocess.run([binpath("vs-policytest"), "decoder", "vmsplice", fd],
                       capture_output=True, text=True)
    assert r.stdout.strip() == expect, r.stdout + r.stderr


MADV_HUGEPAGE, MADV_POPULATE_WRITE = 14, 23


@pytest.mark.parametrize("role,advice,expect", [
    # scrypt's table on huge pages, populated in one call (common/agescrypt.c)
    ("decoder", MADV_HUGEPAGE, "RESULT allowed"),
    ("decoder", MADV_POPULATE_WRITE, "RESULT allowed"),
    ("watcher", MADV_HUGEPAGE, "RESULT killed SIGSYS"),
    ("uploader", MADV_POPULATE_WRITE, "RESULT killed SIGSYS"),
])
def test_huge_page_advice_only_for_the_decoder(role, advice, expect):
    r = subprocess.run([binpath("vs-policytest"), role, "madvise", str(advice)],
                       capture_output=True, text=True)
    assert r.stdout.strip() == expect, r.stdout + r.stderr


@pytest.mark.parametrize("role", POLICIES)
def test_policy_allows_ordinary_calls(role):
    """Control: the filter is not simply killing everything."""
    r = subprocess.run([binpath("vs-policytest"), role, "getpid"], capture_output=True, text=True)
    assert r.stdout.strip() == "RESULT allowed"


def test_policy_opening_passwd_and_vault_is_denied(workdir):
    secret = os.path.join(workdir, "vault-file")
    with open(secret, "w") as f:
        f.write("x")
    for role in POLICIES:
        for path in ("/etc/passwd", secret):
            r = subprocess.run([binpath("vs-policytest"), role, "openat", path],
                               capture_output=True, text=True)
            assert r.stdout.strip() == "RESULT errno EACCES", (role, path, r.stdout)


def test_uploader_dir_remote_stays_beneath_its_directory(workdir):
    """With a dir: remote the uploader may open files relative to the remote's
    fd (seccomp allows the call), and Landlock keeps every path beneath it."""
    remote = os.path.join(workdir, "remote")
    os.makedirs(os.path.join(remote, "v"))
    with open(os.path.join(remote, "v", "vault.tar.age"), "w") as f:
        f.write("x")
    with open(os.path.join(workdir, "outside"), "w") as f:
        f.write("secret")
    cases = [("v/vault.tar.age", "RESULT allowed"), ("../outside", "RESULT errno EACCES"),
             ("/etc/passwd", "RESULT errno EACCES"),
             ("v/../../outside", "RESULT errno EACCES")]
    for path, want in cases:
        r = subprocess.run([binpath("vs-policytest"), "uploader-dir", remote, path],
                           capture_output=True, text=True)
        assert r.stdout.strip() == want, (path, r.stdout, r.stderr)
