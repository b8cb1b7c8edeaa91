"""`vaultsyncd -t` checks what a configuration needs of this host, not only
that it parses, and the daemon checks the same again as it starts: a missing
configuration file (66), a missing or unfit credentials file, an unknown
PrivsepUser, a vault Path we do not mount that is not in RAM, user mode
without a runtime directory (64).  Each problem is one line naming the
keyword's file:line (a default: the file) and what to do.  A missing
credentials file or an on-disk Path stops only -t: a starting daemon warns
and runs, since its other vaults work and that vault says why when used."""
import os
import pwd
import re
import subprocess

import pytest

from conftest import IS_ROOT, MODES, Identity, binpath, wait_for

EXIT_USAGE = 64
EXIT_NOINPUT = 66


def vsd(ident, args, env_extra=None, daemon="vaultsyncd"):
    argv = [binpath(daemon)] + (["--user"] if ident.user_mode else []) + list(args)
    return subprocess.run(ident.wrap(argv), capture_output=True, text=True, timeout=30,
                          env=ident.env(env_extra))


def write(ident, path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if IS_ROOT:
        os.chown(path, ident.uid, ident.gid)
    return path


def creds(ident, path, mode=0o600):
    return write(ident, path, "AWS_ACCESS_KEY_ID=AKIATEST\nAWS_SECRET_ACCESS_KEY=x\n", mode)


def on_disk(workdir):
    """A directory of the test's on a disk filesystem, or None where /tmp is a tmpfs."""
    r = subprocess.run(["stat", "-f", "-c", "%T", workdir], capture_output=True, text=True)
    return None if r.stdout.strip() in ("tmpfs", "ramfs") else workdir


def lines(r):
    return r.stderr.splitlines()


def refused(ident, conf, text, want):
    """-t on text, written to conf, exits 64 with the one line want ({conf}: its name)."""
    write(ident, conf, text)
    r = vsd(ident, ["-t", "-f", conf])
    assert (r.returncode, lines(r)) == (EXIT_USAGE, [want.format(conf=conf)]), r.stderr


S3_VAULT = "Vault v\n  Path /dev/shm/vs-preflight-none\n  Mount no\n  Remote s3://bucket/p\n"


@pytest.mark.parametrize("user_mode", MODES)
def test_missing_credentials_file(workdir, user_mode):
    ident = Identity(user_mode)
    missing = os.path.join(workdir, "s3.env")
    conf = os.path.join(workdir, "c.conf")
    refused(ident, conf, "LogFormat text\nCredentialsFile %s\n%s" % (missing, S3_VAULT),
            "vaultsyncd: {conf}:2: CredentialsFile %s (vault v, s3://bucket/p): no such "
            "file; create it, mode 0600, with the lines AWS_ACCESS_KEY_ID=... and "
            "AWS_SECRET_ACCESS_KEY=... (vaultsyncd.conf(5)), or point CredentialsFile at "
            "the file that has them" % missing)
    # Made as it says: accepted.
    creds(ident, missing)
    r = vsd(ident, ["-t", "-f", conf])
    assert (r.returncode, r.stderr) == (0, "")


def test_credentials_file_named_where_each_vault_gets_it(workdir):
    """A vault's own CredentialsFile names its line; the default names the file."""
    ident = Identity(not IS_ROOT)
    own = os.path.join(workdir, "own.env")
    conf = write(ident, os.path.join(workdir, "c.conf"),
                 S3_VAULT + "Vault w\n  Path /dev/shm/vs-preflight-none\n  Mount no\n"
                 "  Remote s3://bucket/q\n  CredentialsFile %s\n" % own)
    credsdir = os.path.join(workdir, "credentials")
    os.mkdir(credsdir)
    r = vsd(ident, ["-t", "-f", conf], {"CREDENTIALS_DIRECTORY": credsdir})
    assert r.returncode == EXIT_USAGE
    err = lines(r)
    assert len(err) == 2, r.stderr
    assert err[0].startswith("vaultsyncd: %s: CredentialsFile %s/s3 (vault v, "
                             "s3://bucket/p): no such file" % (conf, credsdir)), err[0]
    assert err[1].startswith("vaultsyncd: %s:9: CredentialsFile %s (vault w, "
                             "s3://bucket/q): no such file" % (conf, own)), err[1]


@pytest.mark.parametrize("user_mode", MODES)
def test_unfit_credentials_file(workdir, user_mode):
    ident = Identity(user_mode)
    real = creds(ident, os.path.join(workdir, "real.env"))
    link = os.path.join(workdir, "link.env")
    os.symlink(real, link)
    conf = os.path.join(workdir, "c.conf")
    for path, mode, want in ((link, None, "is a symlink; name the file itself"),
                             (real, 0o644, "mode 0644 is too open; chmod 600"),
                             (real, 0o640, "mode 0640 is too open; chmod 600")):
        if mode is not None:
            os.chmod(path, mode)
        refused(ident, conf, "CredentialsFile %s\n%s" % (path, S3_VAULT),
                "vaultsyncd: {conf}:1: CredentialsFile %s (vault v, s3://bucket/p): %s"
                % (path, want))
    os.chmod(real, 0o400)
    r = vsd(ident, ["-t", "-f", conf])
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.root
def test_credentials_file_is_never_opened_by_the_parent(workdir):
    """-t judges the file by lstat: its bytes are the uploader's alone."""
    ident = Identity(False)
    path = creds(ident, os.path.join(workdir, "s3.env"))
    conf = write(ident, os.path.join(workdir, "c.conf"),
                 "CredentialsFile %s\n%s" % (path, S3_VAULT))
    trace = os.path.join(workdir, "trace")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=%file", "-o", trace,
                        binpath("vaultsyncd"), "-t", "-f", conf], capture_output=True,
                       text=True, env=ident.env(), timeout=30)
    assert (r.returncode, r.stderr) == (0, "")
    with open(trace) as f:
        calls = [ln for ln in f if path in ln]
    assert calls, "the file was not even looked at"
    assert not [ln for ln in calls if re.search(r"\bopen(at2?)?\(", ln)], calls


@pytest.mark.root
def test_unknown_privsep_user(workdir):
    ident = Identity(False)
    conf = write(ident, os.path.join(workdir, "c.conf"),
                 "# a typo\nPrivsepUser _vaultsnyc\nVault v\n  Path /run/vs-preflight\n")
    want = ["vaultsyncd: %s:2: PrivsepUser _vaultsnyc does not exist; create it "
            "(systemd-sysusers, or: useradd --system --no-create-home --shell "
            "/usr/sbin/nologin _vaultsnyc)" % conf]
    r = vsd(ident, ["-t", "-f", conf])
    assert (r.returncode, lines(r)) == (EXIT_USAGE, want), r.stderr
    # Starting for real says the same, before it touches anything.
    r = vsd(ident, ["-f", conf], daemon="vaultsyncd-dev")
    assert (r.returncode, lines(r)) == (EXIT_USAGE, want), r.stderr
    refused(ident, conf, "PrivsepUser root\nVault v\n  Path /run/vs-preflight\n",
            "vaultsyncd: {conf}:1: PrivsepUser root must not be root or in group root; "
            "name an unprivileged account of its own")


@pytest.mark.parametrize("user_mode", MODES)
def test_vault_path_on_disk(workdir, daemon_factory, user_mode):
    disk = on_disk(workdir)
    if disk is None:
        pytest.skip("no disk filesystem at hand: /tmp is in RAM here")
    ident = Identity(user_mode)
    vault = os.path.join(disk, "vault")
    os.mkdir(vault)
    if IS_ROOT:
        os.chown(vault, ident.uid, ident.gid)
    refused(ident, os.path.join(workdir, "c.conf"),
            "Vault v\n  Remote dir:%s/remote\n  Mount no\n  Path %s\n" % (workdir, vault),
            "vaultsyncd: {conf}:4: vault v: Path %s is not on tmpfs or ramfs, and a vault "
            "must never touch a disk: use a directory in RAM (under $XDG_RUNTIME_DIR or "
            "/dev/shm), or mount a tmpfs on it%s"
            % (vault, "" if user_mode else ", or set Mount yes"))
    # A starting daemon warns and runs (a tmpfs may be mounted there later);
    # init refuses the Path, saying why.
    d = daemon_factory(user_mode=user_mode, vault_conf="Vault v\n  Path %s\n  Mount no\n"
                       "  Remote dir:%s/remote\n" % (vault, workdir)).start()
    warn = [rec["msg"] for rec in d.records() if rec.get("level") == "warning"
            and "Path %s is not on tmpfs or ramfs" % vault in rec.get("msg", "")]
    assert len(warn) == 1 and warn[0].endswith("; init and unlock refuse it until then"), \
        d.read_log()
    assert d.stop() == 0


def test_missing_default_config_file(workdir):
    """No -f and no file: named, with a configuration to start from that -t
    accepts once written there; EX_NOINPUT (it used to say "no vaults
    configured")."""
    ident = Identity(True)	# user mode: the default file is below $HOME
    home = os.path.join(workdir, "home")
    os.makedirs(home)
    if IS_ROOT:
        os.chown(home, ident.uid, ident.gid)
    default = os.path.join(home, ".config", "vaultsync", "vaultsyncd.conf")
    env = {"HOME": home}
    r = vsd(ident, ["-t"], env)
    assert r.returncode == EXIT_NOINPUT, r.stderr
    err = lines(r)
    assert err[0] == ("vaultsyncd: %s: no such file: create it with a Vault block for each "
                      "vault (see vaultsyncd.conf(5)), or name another file with -f; the "
                      "smallest is" % default), r.stderr
    example = "\n".join(ln[1:] for ln in err[1:]) + "\n"
    assert example.startswith("Vault work\n"), example
    # Starting for real: the same.
    r = vsd(ident, [], env, daemon="vaultsyncd-dev")
    assert r.returncode == EXIT_NOINPUT and lines(r)[0] == err[0], r.stderr
    # The example, as printed, is a configuration -t accepts.
    subprocess.run(ident.wrap(["mkdir", "-p", os.path.dirname(default)]), check=True)
    write(ident, default, example)
    r = vsd(ident, ["-t"], env)
    assert (r.returncode, r.stderr) == (0, ""), example


@pytest.mark.root
def test_missing_default_config_file_system_mode(workdir):
    default = "/etc/vaultsync/vaultsyncd.conf"
    if os.path.exists(default):
        pytest.skip("%s exists on this host" % default)
    r = vsd(Identity(False), ["-t"])
    assert r.returncode == EXIT_NOINPUT, r.stderr
    assert lines(r)[0].startswith("vaultsyncd: %s: no such file: create it" % default)
    assert "\t\tPath /run/vaults/work" in lines(r)


def test_explicit_missing_file_stays_a_usage_error(workdir):
    """DESIGN §10: -f names a file that must exist; that is exit 64."""
    r = vsd(Identity(not IS_ROOT), ["-t", "-f", os.path.join(workdir, "nope.conf")])
    assert r.returncode == EXIT_USAGE


def nobody_without_runtime_dir():
    pw = pwd.getpwnam("nobody")
    if os.path.exists("/run/user/%d" % pw.pw_uid):
        pytest.skip("/run/user/%d exists on this host" % pw.pw_uid)
    return pw


@pytest.mark.root
def test_user_mode_without_xdg_runtime_dir(workdir):
    """What su to an account without a login session gives: no XDG_RUNTIME_DIR,
    no /run/user/UID.  It used to fail with "mkdir /run/user/UID: Permission
    denied" at start, and -t passed."""
    pw = nobody_without_runtime_dir()
    conf = os.path.join(workdir, "c.conf")
    with open(conf, "w") as f:
        f.write("StateDir %s/state\nVault v\n  Path /dev/shm/vs-preflight-none\n"
                "  Remote dir:%s/remote\n" % (workdir, workdir))
    os.chmod(conf, 0o644)
    want = ("vaultsyncd: %s: XDG_RUNTIME_DIR is not set, and /run/user/%d does not exist: "
            "the default RuntimeDir, /run/user/%d/vaultsync, lives there; log in through a "
            "session that sets XDG_RUNTIME_DIR (a desktop or ssh login; su and sudo usually "
            "do not), or run 'loginctl enable-linger' once and export "
            "XDG_RUNTIME_DIR=/run/user/%d, or set RuntimeDir to a directory of your own"
            % (conf, pw.pw_uid, pw.pw_uid, pw.pw_uid))
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C"}
    for args, binary in ((["-t"], "vaultsyncd"), ([], "vaultsyncd-dev")):
        r = subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                            "--clear-groups", binpath(binary), "-f", conf] + args,
                           capture_output=True, text=True, env=env, timeout=30)
        assert (r.returncode, lines(r)) == (EXIT_USAGE, [want]), r.stderr


def test_user_mode_with_a_missing_xdg_runtime_dir(workdir):
    ident = Identity(True)
    gone = os.path.join(workdir, "gone")
    conf = write(ident, os.path.join(workdir, "c.conf"),
                 "Vault v\n  Path /dev/shm/vs-preflight-none\n  Remote dir:%s/r\n" % workdir)
    r = vsd(ident, ["-t", "-f", conf], {"XDG_RUNTIME_DIR": gone})
    assert r.returncode == EXIT_USAGE
    assert lines(r)[0].startswith("vaultsyncd: %s: XDG_RUNTIME_DIR %s does not exist: the "
                                  "default RuntimeDir, %s/vaultsync, lives there; "
                                  % (conf, gone, gone)), r.stderr
    # Setting RuntimeDir by hand needs no session.
    write(ident, conf, "RuntimeDir %s/run\nVault v\n  Path /dev/shm/vs-preflight-none\n"
          "  Remote dir:%s/r\n" % (workdir, workdir))
    r = vsd(ident, ["-t", "-f", conf], {"XDG_RUNTIME_DIR": gone})
    assert (r.returncode, r.stderr) == (0, "")


def test_missing_credentials_file_warns_at_start(daemon_factory, workdir):
    """The daemon starts (its other vaults, and this one's local saves, work;
    the uploader reports the file in status) and says what to do."""
    missing = os.path.join(workdir, "nope.env")
    d = daemon_factory(user_mode=not IS_ROOT, extra_conf="CredentialsFile %s\n" % missing,
                       vault_conf="Vault s3v\n  Path %s/vault\n  Mount no\n"
                       "  Remote s3://test-bucket/vaults\n  Endpoint http://127.0.0.1:9\n"
                       % workdir).start()
    warn = [rec["msg"] for rec in d.records() if "CredentialsFile %s" % missing
            in rec.get("msg", "")]
    assert len(warn) == 1 and "no such file; create it, mode 0600" in warn[0], d.read_log()
    assert warn[0].endswith("its pushes wait until the file is fixed")
    assert d.stop() == 0
