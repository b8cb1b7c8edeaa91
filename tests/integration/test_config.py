"""Configuration: `vaultsyncd -t` / `-T` against the good and bad fixtures.

Every file in configs/bad/NN-*.conf starts with
    # expect-line: N          (0: the error is not tied to a line)
    # expect: SUBSTRING       (case-insensitive, in the message)
and optionally
    # expect-file: NAME       (basename of the file the error names, when it
                               is an included file rather than the config)
"""
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("VS_BUILD", os.path.join(REPO, "build")))
DAEMON = os.path.join(BUILD, "vaultsyncd-dev")
CONFIGS = os.path.join(HERE, "configs")
GOOD = os.path.join(CONFIGS, "good")
BAD = os.path.join(CONFIGS, "bad")
IS_ROOT = os.geteuid() == 0
EXIT_USAGE = 64
EXIT_NOINPUT = 66

# DESIGN §10, in its order.  Cross-checked against the document when found.
DESIGN_GLOBAL = [
    "RuntimeDir", "StateDir", "ControlSocket", "ControlGroup", "PrivsepUser",
    "PrivsepChroot", "DeviceId", "LogFormat", "LogLevel", "Interval",
    "WatcherDebounce", "HeadPollInterval", "HeadPollMaxInterval", "StatusAPI",
    "StatusListen", "StatusRequireAuth", "StatusTickHistory", "CredentialsFile",
    "MultipartThreshold", "Include",
]
DESIGN_VAULT = [
    "Path", "Mount", "MountSize", "Owner", "Recipient", "Remote", "Endpoint",
    "Region", "PathStyle", "CredentialsFile", "Interval", "HistoryInterval",
    "HistoryKeep",
]
DESIGN_KEYWORDS = sorted(set(DESIGN_GLOBAL + DESIGN_VAULT + ["Vault"]))

# Leak checks belong to the unit tests; -t exits with the config still loaded.
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

LINE_RE = re.compile(r"^vaultsyncd: (?P<file>.+?):(?P<line>\d+): (?P<msg>.+)$")
NOLINE_RE = re.compile(r"^vaultsyncd: (?P<file>[^:]+): (?P<msg>.+)$")


def listing(d, pattern):
    rx = re.compile(pattern)
    return sorted(f for f in os.listdir(d) if rx.match(f))


BAD_FILES = listing(BAD, r"^\d\d-.*\.conf$")
GOOD_FILES = listing(GOOD, r"^[^.].*\.conf$")
MODES = ["system", "user"]


@pytest.fixture(scope="module", autouse=True)
def daemon_binary():
    assert os.access(DAEMON, os.X_OK), \
        "%s is missing: build it first (make %s)" % (DAEMON, os.path.relpath(DAEMON, REPO))


@pytest.fixture
def user_home(tmp_path):
    home = tmp_path / "home"
    for d in ("", ".config", ".local/state", "run"):
        (home / d).mkdir(parents=True, exist_ok=True)
    return home


def make_env(mode, home=None, extra=None):
    """A clean environment: nothing (AWS_*, CREDENTIALS_DIRECTORY) leaks in."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    env.update(SAN_ENV)
    if mode == "user":
        assert home is not None
        env.update({"HOME": str(home),
                    "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_STATE_HOME": str(home / ".local/state"),
                    "XDG_RUNTIME_DIR": str(home / "run")})
    else:
        env["HOME"] = os.environ.get("HOME", "/root")
    if extra:
        env.update(extra)
    return env


def vsd(args, mode="system", home=None, extra_env=None, cwd=None):
    argv = [DAEMON] + (["--user"] if mode == "user" else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env=make_env(mode, home, extra_env), cwd=cwd)


def headers(path):
    h = {}
    with open(path, encoding="utf-8") as f:
        for _ in range(3):
            m = re.match(r"^# (expect(?:-line|-file)?): (.*)$", f.readline().rstrip("\n"))
            if m:
                h[m.group(1)] = m.group(2)
    return h


def dump(path, mode, home=None, extra_env=None):
    r = vsd(["-T", "-f", str(path)], mode, home, extra_env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def keyword_lines(text):
    """First word of every non-comment line (the keyword as written)."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            out.append(re.split(r"[\s=]", s, maxsplit=1)[0])
    return out


# ---- bad configs ---------------------------------------------------------------

def test_enough_bad_fixtures():
    assert len(BAD_FILES) >= 30
    for name in BAD_FILES:
        h = headers(os.path.join(BAD, name))
        assert "expect-line" in h and "expect" in h, name


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_config(name):
    path = os.path.join(BAD, name)
    h = headers(path)
    want_line = int(h["expect-line"])
    want_file = h.get("expect-file", name)

    r = vsd(["-t", "-f", path])
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    err = lines[0]
    if want_line > 0:
        m = LINE_RE.match(err)
        assert m, err
        assert int(m.group("line")) == want_line, err
    else:
        assert not re.match(r"^vaultsyncd: [^:]+:\d+: ", err), err
        m = NOLINE_RE.match(err)
        assert m, err
    assert os.path.basename(m.group("file")) == want_file, err
    assert h["expect"].lower() in m.group("msg").lower(), err


def test_bad_config_in_user_mode_too(user_home):
    path = os.path.join(BAD, "15-listen-any.conf")
    r = vsd(["-t", "-f", path], "user", user_home)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == ("vaultsyncd: %s:3: StatusListen must be a loopback address "
                        "(127.0.0.0/8, [::1] or localhost), not '0.0.0.0'\n" % path)


def test_error_names_file_as_given():
    r = vsd(["-t", "-f", "01-unknown-keyword.conf"], cwd=BAD)
    assert r.returncode == EXIT_USAGE
    assert r.stderr == ("vaultsyncd: 01-unknown-keyword.conf:4: "
                        "unknown keyword 'Frobnicate'\n")


def test_error_in_included_file_names_it():
    r = vsd(["-t", "-f", os.path.join(BAD, "37-error-in-included.conf")])
    assert r.returncode == EXIT_USAGE
    assert r.stderr.startswith("vaultsyncd: %s:3: HeadPollInterval: bad duration"
                               % os.path.join(BAD, "inc", "bad-inner.conf"))


def test_missing_explicit_file(tmp_path):
    missing = tmp_path / "nope.conf"
    r = vsd(["-t", "-f", str(missing)])
    assert r.returncode == EXIT_USAGE
    assert r.stdout == ""
    assert r.stderr == ("vaultsyncd: %s: cannot open %s: No such file or directory\n"
                        % (missing, missing))
    r = vsd(["-T", "-f", str(missing)])
    assert r.returncode == EXIT_USAGE
    assert r.stdout == ""


def test_directory_is_not_a_config(tmp_path):
    r = vsd(["-t", "-f", str(tmp_path)])
    assert r.returncode == EXIT_USAGE
    assert "not a regular file" in r.stderr


def test_default_file_missing_is_named(user_home):
    """No configuration at all: the file is named, with how to write one
    (it used to say "no vaults configured"); EX_NOINPUT, as DESIGN §7 has
    for what is missing.  tests/integration/test_preflight.py has more."""
    default = user_home / ".config" / "vaultsync" / "vaultsyncd.conf"
    r = vsd(["-t"], "user", user_home)
    assert r.returncode == EXIT_NOINPUT
    assert r.stderr.startswith("vaultsyncd: %s: no such file: create it with a Vault block"
                               % default), r.stderr


def test_default_file_is_read(user_home):
    default = user_home / ".config" / "vaultsync" / "vaultsyncd.conf"
    default.parent.mkdir(parents=True)
    default.write_text("Vault fromdefault\n  Path /run/vs-default\n")
    r = vsd(["-T"], "user", user_home)
    assert r.returncode == 0, r.stderr
    assert "\nVault fromdefault\n\tPath /run/vs-default\n" in r.stdout


# ---- good configs --------------------------------------------------------------

def test_good_fixtures_present():
    assert "all-keywords.conf" in GOOD_FILES
    assert "include.conf" in GOOD_FILES
    assert listing(os.path.join(GOOD, "conf.d"), r".*\.conf$")


def on_this_host(tmp_path):
    """The good fixtures, copied where the host has what they name: -t checks
    that each S3 vault's credentials file exists with mode 0600 (not only that
    the configuration parses), and the fixtures name files under /etc.  Each
    CredentialsFile now names a file below tmp_path that exists, and the
    default one is a systemd credential.  Returns the copy's directory and
    the environment to run with."""
    root = tmp_path / "host"
    good = root / "good"
    shutil.copytree(GOOD, good)

    def make(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("AWS_ACCESS_KEY_ID=AKIAFIXTURE\nAWS_SECRET_ACCESS_KEY=fixture\n")
        path.chmod(0o600)
    for conf in good.rglob("*.conf"):
        text = conf.read_text()
        for old in set(re.findall(r"^\s*CredentialsFile\s+(/\S+)", text, re.M | re.I)):
            make(root / old.lstrip("/"))
            text = text.replace(" " + old, " %s/%s" % (root, old.lstrip("/")))
        conf.write_text(text)
    make(root / "credentials" / "s3")
    return str(good), {"CREDENTIALS_DIRECTORY": str(root / "credentials")}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", GOOD_FILES)
def test_good_config_passes(name, mode, user_home, tmp_path):
    good, env = on_this_host(tmp_path)
    r = vsd(["-t", "-f", os.path.join(good, name)], mode, user_home, env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert len(r.stdout.splitlines()) <= 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", GOOD_FILES)
def test_dump_roundtrip(name, mode, user_home, tmp_path):
    good, env = on_this_host(tmp_path)
    first = dump(os.path.join(good, name), mode, user_home, env)
    assert first.startswith("#")
    assert "\nVault " in first
    assert "\nInclude" not in first
    again = tmp_path / "dumped.conf"
    again.write_text(first)
    second = dump(again, mode, user_home, env)
    assert second == first
    # The dump is a complete config: -t accepts it on its own.
    r = vsd(["-t", "-f", str(again)], mode, user_home, env)
    assert r.returncode == 0, r.stderr


def test_include_conf_d_expanded():
    out = dump(os.path.join(GOOD, "include.conf"), "system")
    vaults = re.findall(r"^Vault (\S+)$", out, re.M)
    assert vaults == ["work", "personal"]
    assert "\nLogLevel info\n" in out
    # 20-personal.conf sets its own Interval; 10-work.conf inherits 5m.
    work = out.split("\nVault work\n")[1].split("\nVault ")[0]
    personal = out.split("\nVault personal\n")[1]
    assert "\tInterval 5m\n" in work
    assert "\tInterval 30s\n" in personal
    assert "\tRemote s3://work-bucket/vaults\n" in work


def test_user_mode_defaults(user_home):
    out = dump(os.path.join(GOOD, "minimal.conf"), "user", user_home)
    assert "\nRuntimeDir %s/run/vaultsync\n" % user_home in out
    assert "\nStateDir %s/.local/state/vaultsync\n" % user_home in out
    assert "\nControlSocket %s/run/vaultsync/ctl.sock\n" % user_home in out
    assert "\nCredentialsFile %s/.config/vaultsync/s3.env\n" % user_home in out
    assert "\n\tMount no\n" in out


@pytest.mark.skipif(not IS_ROOT, reason="without root the daemon runs in user mode")
def test_system_mode_defaults():
    out = dump(os.path.join(GOOD, "minimal.conf"), "system")
    for line in ("RuntimeDir /run/vaultsync", "StateDir /var/lib/vaultsync",
                 "ControlSocket /run/vaultsync/ctl.sock", "ControlGroup vaultsync",
                 "PrivsepUser _vaultsync", "LogFormat json", "LogLevel info",
                 "Interval 5m", "WatcherDebounce 500ms", "HeadPollInterval 10s",
                 "HeadPollMaxInterval 2m", "StatusAPI yes", "StatusListen 127.0.0.1:0",
                 "StatusRequireAuth yes", "StatusTickHistory 100",
                 "MultipartThreshold 64M", "\tMount yes", "\tMountSize 64M",
                 "\tEndpoint https://s3.amazonaws.com", "\tRegion us-east-1",
                 "\tPathStyle no", "\tHistoryInterval off", "\tHistoryKeep 30"):
        assert "\n%s\n" % line in out, line


def test_credentials_directory_default(user_home):
    out = dump(os.path.join(GOOD, "minimal.conf"), "user", user_home,
               {"CREDENTIALS_DIRECTORY": "/run/credentials/vaultsyncd.service"})
    assert "\nCredentialsFile /run/credentials/vaultsyncd.service/s3\n" in out
    assert "\n\tCredentialsFile /run/credentials/vaultsyncd.service/s3\n" in out


def test_runtime_dir_moves_control_socket(tmp_path, user_home):
    conf = tmp_path / "rt.conf"
    conf.write_text("RuntimeDir /run/elsewhere\nVault v\n  Path /run/v\n")
    out = dump(conf, "user", user_home)
    assert "\nControlSocket /run/elsewhere/ctl.sock\n" in out


# ---- every DESIGN §10 keyword --------------------------------------------------

def design_md():
    for p in (os.environ.get("VS_DESIGN_MD"), os.path.join(REPO, "DESIGN.md"),
              os.path.join(REPO, "docs", "DESIGN.md")):
        if p and os.path.exists(p):
            return p
    return None


def test_keyword_list_matches_design():
    path = design_md()
    if path is None:
        pytest.skip("DESIGN.md not found (set VS_DESIGN_MD to cross-check)")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    sec = text.split("## 10. Configuration", 1)[1].split("\n## ", 1)[0]
    part = sec.split("Global keywords", 1)[1].split("Credentials file:", 1)[0]
    glob_part, vault_part = part.split("`Vault NAME` block keywords", 1)
    camel = re.compile(r"^[A-Z][A-Za-z]+$")
    doc_global = [w for w in re.findall(r"`([^`]+)`", glob_part) if camel.match(w)]
    doc_vault = [w for w in re.findall(r"`([^`]+)`", vault_part) if camel.match(w)]
    assert doc_global == DESIGN_GLOBAL
    assert doc_vault == DESIGN_VAULT


def test_every_design_keyword_is_used_and_accepted(user_home, tmp_path):
    path = os.path.join(GOOD, "all-keywords.conf")
    with open(path, encoding="utf-8") as f:
        used = keyword_lines(f.read())
    for kw in DESIGN_KEYWORDS:
        assert kw in used, "%s missing from all-keywords.conf" % kw
    good, env = on_this_host(tmp_path)
    r = vsd(["-t", "-f", os.path.join(good, "all-keywords.conf")], extra_env=env)
    assert r.returncode == 0, r.stderr

    out = dump(path, "system")
    dumped = keyword_lines(out)
    for kw in DESIGN_KEYWORDS:
        if kw != "Include":
            assert kw in dumped, kw
    # The non-default values took effect.
    for line in ("RuntimeDir /run/vaultsync-test", "ControlSocket /run/vaultsync-test/control.sock",
                 "DeviceId test-box.lan", "LogFormat text", "LogLevel debug", "Interval 10m",
                 "WatcherDebounce 250ms", "HeadPollInterval 15s", "HeadPollMaxInterval 5m",
                 "StatusTickHistory 250", "CredentialsFile /etc/vaultsync/test-s3.env",
                 "MultipartThreshold 128M", "\tMountSize 32M", "\tOwner root:root",
                 "\tRemote s3://vaultsync-test-bucket/devices/laptop/",
                 "\tEndpoint https://s3.eu-central-1.amazonaws.com", "\tRegion eu-central-1",
                 "\tCredentialsFile /etc/vaultsync/secrets-s3.env", "\tInterval 1h30m",
                 "\tHistoryInterval 1d", "\tHistoryKeep 14", "\tMount no",
                 "\tRemote dir:/var/backups/vaultsync", "\tEndpoint http://127.0.0.1:7480",
                 "\tPathStyle yes", "\tHistoryKeep 0"):
        assert "\n%s\n" % line in out, line
    assert out.count("\tRecipient age1") == 2
    # The second vault inherits the global Interval and CredentialsFile.
    local = out.split("\nVault local\n")[1]
    assert "\tInterval 10m\n" in local
    assert "\tCredentialsFile /etc/vaultsync/test-s3.env\n" in local


KEYWORD_VALUES = {
    "RuntimeDir": "/run/x", "StateDir": "/var/lib/x", "ControlSocket": "/run/x.sock",
    "ControlGroup": "wheel", "PrivsepUser": "nobody", "PrivsepChroot": "/var/empty",
    "DeviceId": "box", "LogFormat": "pretty", "LogLevel": "debug", "Interval": "1m",
    "WatcherDebounce": "0s", "HeadPollInterval": "1s", "HeadPollMaxInterval": "1d",
    "StatusAPI": "no", "StatusListen": "localhost:8080", "StatusRequireAuth": "no",
    "StatusTickHistory": "1", "CredentialsFile": "/etc/x.env",
    "MultipartThreshold": "5G", "Include": "/nonexistent-vaultsync/*.conf",
    "Path": "/run/p", "Mount": "no", "MountSize": "1T", "Owner": "nobody:nogroup",
    "Recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    "Remote": "s3://bucket/prefix", "Endpoint": "https://[::1]:9000", "Region": "local",
    "PathStyle": "yes", "HistoryInterval": "365d", "HistoryKeep": "100000",
    "Vault": "other",
}


@pytest.mark.parametrize("kw", DESIGN_KEYWORDS)
def test_keyword_accepted_in_any_case(kw, tmp_path, user_home):
    """Each keyword, spelled in lower case, is accepted and takes effect."""
    value = KEYWORD_VALUES[kw]
    line = "%s %s\n" % (kw.lower(), value)
    vault_only = kw in DESIGN_VAULT and kw not in DESIGN_GLOBAL
    if kw == "Vault":
        text = "Vault main\n  Path /run/main\n" + line + "  Path /run/other\n"
    elif kw == "Path":
        text = "Vault main\n  " + line
    elif vault_only:
        text = "Vault main\n  Path /run/main\n  " + line
    else:
        text = line + "Vault main\n  Path /run/main\n"
    conf = tmp_path / "kw.conf"
    conf.write_text(text)
    out = dump(conf, "user", user_home)
    if kw == "Vault":
        assert "\nVault other\n\tPath /run/other\n" in out
    elif kw != "Include":
        want = "\n%s%s %s\n" % ("\t" if vault_only else "", kw, value)
        assert want in out, (want, out)
