"""Process model: four processes, each child confined as DESIGN §2 says."""
import grp
import os
import pwd
import stat
import subprocess

import pytest

from conftest import IS_ROOT, MODES, binpath, proc_status, Identity

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
