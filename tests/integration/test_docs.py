"""The manual pages and the bash completion, held to the code they describe.

The pages must lint clean under mandoc; vaultsyncd.conf(5) must document
exactly the keywords of the parser's table in common/config.c, in the
scopes the table allows, with the defaults `vaultsyncd -T` prints; the
options and commands of both --help texts must have their entries; the
completion must parse, load, and complete commands and vault names.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import IS_ROOT, REPO, SAN_ENV, binpath

MAN = os.path.join(REPO, "packaging", "man")
PAGES = ["vaultsyncd.8", "vaultsyncctl.1", "vaultsyncd.conf.5"]
COMPLETION = os.path.join(REPO, "packaging", "completion", "vaultsyncctl")
CONFIG_C = os.path.join(REPO, "common", "config.c")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def page(name):
    return read(os.path.join(MAN, name))


def clean_env(tmp, extra=None):
    """Nothing of the caller's leaks in: make check exports AWS_* for the S3
    tests, and vaultsyncd refuses to start with credentials in its environment."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp), "LANG": "C"}
    env.update(SAN_ENV)
    if extra:
        env.update(extra)
    return env


def help_text(binary, tmp):
    r = subprocess.run([binpath(binary), "--help"], capture_output=True, text=True,
                       env=clean_env(tmp), timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_options(text):
    """Every option a --help text names; -dtT in a usage line is three."""
    out = set()
    for tok in re.findall(r"(?<![\w$/.~-])--?[A-Za-z0-9][\w-]*", text):
        if tok.startswith("--") or len(tok) == 2:
            out.add(tok)
        else:
            out.update("-" + c for c in tok[1:])
    return out


def fl_documented(text, opt):
    """Is opt written as an Fl argument (Fl d, Fl -user) anywhere in text?"""
    return re.search(r"\bFl\s+" + re.escape(opt[1:]) + r"(?=\s|$)", text, re.M) is not None


def sections(text, macro):
    """{title: body} for each .Sh or .Ss of a page."""
    parts = re.split(r"^\.%s (.+)$" % macro, text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


MACROS = set("Ar Cm Dq Dv Em Er Ev Fl Li Nm No Ns Oc Oo Op Pa Pq Ql Sq Sx Sy Xr".split())


def mdoc_words(body):
    """The running text of mdoc lines: macro names dropped, escapes undone."""
    words = []
    for line in body.splitlines():
        toks = line.split()
        if line.startswith("."):
            toks = toks[1:]
        words += [t.replace("\\&", "").replace("\\e", "\\") for t in toks
                  if t not in MACROS]
    return " ".join(words)


# ---- (a) mandoc --------------------------------------------------------------

@pytest.mark.parametrize("name", PAGES)
def test_page_lints_clean(name):
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        pytest.skip("mandoc is not installed (sh tests/deps.sh test installs it)")
    r = subprocess.run([mandoc, "-Tlint", "-W", "warning", os.path.join(MAN, name)],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


# ---- (b) configuration keywords ------------------------------------------------

def parser_keywords():
    """{keyword: flags} from the cfg_kw table of common/config.c."""
    src = read(CONFIG_C)
    enum = re.search(r"enum cfg_kw \{(.*?)\};", src, re.S).group(1)
    ids = [k for k in re.findall(r"\bKW_\w+", enum) if k != "KW__COUNT"]
    table = re.search(r"cfg_kw\[KW__COUNT\] = \{(.*?)\n\};", src, re.S).group(1)
    rows = re.findall(r'\[(KW_\w+)\]\s*=\s*\{\s*"(\w+)"\s*,\s*([^}]*)\}', table)
    assert sorted(r[0] for r in rows) == sorted(ids), "the table regex missed a row"
    return {name: flags for _, name, flags in rows}


def documented_keywords():
    """{'global': [...], 'vault': [...]}: the .It Cm entries of the two lists."""
    ss = sections(page("vaultsyncd.conf.5"), "S[sh]")
    get = lambda title: re.findall(r"^\.It Cm (\w+)", ss[title], re.M)
    return {"global": get("Global keywords"), "vault": get("Vault blocks")}


def test_parser_table_is_found():
    kws = parser_keywords()
    assert {"Vault", "Include", "Path", "Remote", "RuntimeDir"} <= set(kws)


def test_every_parser_keyword_is_documented():
    doc = documented_keywords()
    missing = set(parser_keywords()) - set(doc["global"]) - set(doc["vault"])
    assert not missing, "keywords the parser knows, missing from vaultsyncd.conf.5"


def test_no_unknown_keyword_is_documented():
    doc = documented_keywords()
    unknown = (set(doc["global"]) | set(doc["vault"])) - set(parser_keywords())
    assert not unknown, "documented keywords the parser does not know"


def test_keywords_are_documented_in_their_scopes():
    doc = documented_keywords()
    kws = parser_keywords()
    # Vault opens a block wherever it appears; it is documented with the blocks.
    want_global = sorted(k for k, f in kws.items() if "SC_GLOBAL" in f and k != "Vault")
    want_vault = sorted(k for k, f in kws.items() if "SC_VAULT" in f)
    assert sorted(doc["global"]) == want_global
    assert sorted(doc["vault"]) == want_vault
    for scope in doc.values():
        assert scope == sorted(scope, key=lambda k: (k != "Vault", k)), \
            "entries are listed alphabetically"


def dump_values(text):
    """{keyword: value} of a `vaultsyncd -T` output: globals, then the first vault's."""
    out = {"global": {}, "vault": {}}
    scope = "global"
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kw, _, val = line.strip().partition(" ")
        if kw == "Vault":
            if out["vault"]:
                break
            scope = "vault"
            continue
        out[scope][kw] = val.strip('"')
    return out


# The entries whose default the dump cannot show as written.
DEFAULT_NOT_DUMPED = {
    "DeviceId": "the host name of the machine running the test",
    "Owner": "not printed when unset",
}


@pytest.mark.root
def test_documented_defaults_match_the_parser(tmp_path):
    """Each 'The default is X' of vaultsyncd.conf(5), against vaultsyncd -T
    in system mode."""
    conf = tmp_path / "min.conf"
    conf.write_text("Vault v\n\tPath /run/v\n\tRemote s3://bucket-name\n")
    creds = "/run/credentials/vaultsyncd.service"
    r = subprocess.run([binpath("vaultsyncd"), "-T", "-f", str(conf)], capture_output=True,
                       text=True, timeout=30,
                       env=clean_env(tmp_path, {"CREDENTIALS_DIRECTORY": creds}))
    assert r.returncode == 0, r.stderr
    dumped = dump_values(r.stdout)
    ss = sections(page("vaultsyncd.conf.5"), "S[sh]")
    checked = 0
    for scope, title in (("global", "Global keywords"), ("vault", "Vault blocks")):
        entries = re.split(r"^\.It Cm ", ss[title], flags=re.M)[1:]
        for entry in entries:
            kw = entry.split()[0]
            m = re.search(r"The default is (\S+)", mdoc_words(entry))
            if m is None or kw in DEFAULT_NOT_DUMPED:
                continue
            want = m.group(1).rstrip(".,;")
            want = want.replace("RuntimeDir", dumped["global"]["RuntimeDir"])
            want = want.replace("$CREDENTIALS_DIRECTORY", creds)
            assert dumped[scope].get(kw) == want, "%s: page says %s" % (kw, want)
            checked += 1
    assert checked >= 25


def example_configs():
    """The configuration files shown in EXAMPLES of vaultsyncd.conf(5)."""
    ex = sections(page("vaultsyncd.conf.5"), "Sh")["EXAMPLES"]
    blocks = re.findall(r"^\.Bd -literal[^\n]*\n(.*?)^\.Ed$", ex, re.M | re.S)
    confs = [b.replace("\\&", "").replace("\\e", "\\") for b in blocks
             if re.search(r"^Vault ", b, re.M)]
    assert len(confs) == 2
    return confs


@pytest.mark.parametrize("mode", ["system", "user"])
@pytest.mark.parametrize("i", [0, 1])
def test_example_configurations_parse(i, mode, tmp_path):
    if mode == "system" and not IS_ROOT:
        pytest.skip("system mode needs root")
    conf = tmp_path / "vaultsyncd.conf"
    conf.write_text(example_configs()[i])
    # -t also checks that an S3 vault's credentials file is there (mode 0600):
    # here it is, as the systemd credential the example's default names.
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "s3").write_text("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=x\n")
    (creds / "s3").chmod(0o600)
    argv = [binpath("vaultsyncd"), "-t", "-f", str(conf)]
    if mode == "user":
        argv.insert(1, "--user")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       env=clean_env(tmp_path, {"XDG_RUNTIME_DIR": str(tmp_path),
                                                "CREDENTIALS_DIRECTORY": str(creds)}))
    assert (r.returncode, r.stderr) == (0, "")


# ---- (c) the --help texts --------------------------------------------------------

def test_every_daemon_option_is_documented(tmp_path):
    text = page("vaultsyncd.8")
    opts = help_options(help_text("vaultsyncd", tmp_path))
    assert {"-f", "-d", "-t", "-T", "-1", "--user", "--insecure-no-sandbox"} <= opts
    for opt in sorted(opts):
        assert fl_documented(text, opt), "vaultsyncd.8 lacks %s" % opt
    listed = set()
    for line in re.findall(r"^\.It (Fl .*)$", sections(text, "Sh")["DESCRIPTION"], re.M):
        listed.update("-" + f for f in re.findall(r"\bFl (\S+)", line))
    assert listed == opts, "options described that --help does not name, or the reverse"


def ctl_commands(help_):
    block = help_.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return sorted(set(re.findall(r"^  ([a-z]+)\b", block, re.M)))


def test_every_ctl_command_and_option_is_documented(tmp_path):
    text = page("vaultsyncctl.1")
    help_ = help_text("vaultsyncctl", tmp_path)
    cmds = ctl_commands(help_)
    assert {"status", "init", "unlock", "lock", "sync", "push", "pull", "verify"} <= set(cmds)
    documented = sorted(set(re.findall(r"^\.It Cm (\w+)", text, re.M)))
    assert documented == cmds
    for opt in sorted(help_options(help_)):
        assert fl_documented(text, opt), "vaultsyncctl.1 lacks %s" % opt


def exit_codes(header, names):
    src = read(os.path.join(REPO, header))
    return {int(v) for n, v in re.findall(r"#define (EXIT_\w+)\s+(\d+)", src) if n in names}


def documented_exit_codes(name):
    body = sections(page(name), "Sh")["EXIT STATUS"]
    return {int(c) for c in re.findall(r"^\.It (\d+)$", body, re.M)}


def test_daemon_exit_codes_are_documented():
    used = set(re.findall(r"\bEXIT_\w+", read(os.path.join(REPO, "parent", "main.c"))))
    codes = exit_codes("parent/vaultsyncd.h", used) | {0, 1}
    assert {64, 70, 71, 73, 130} <= codes
    assert codes <= documented_exit_codes("vaultsyncd.8")


def test_ctl_exit_codes_are_documented():
    codes = exit_codes("ctl/vaultsyncctl.c", {"EXIT_UNHEALTHY", "EXIT_NODAEMON",
                                               "EXIT_USAGE", "EXIT_NOPERM"})
    assert codes == {1, 2, 64, 77}
    assert codes | {0, 66} <= documented_exit_codes("vaultsyncctl.1")


# ---- (d) the bash completion -------------------------------------------------------

def complete(words, tmp, env=None, path=None):
    """COMPREPLY for the command line words, the last one being completed."""
    script = ('source "$1" || exit 9; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
              'COMPREPLY=(); _vaultsyncctl; printf "%s\\n" "${COMPREPLY[@]}"')
    e = clean_env(tmp, env)
    if path is not None:
        e["PATH"] = path
    r = subprocess.run(["/bin/bash", "--norc", "--noprofile", "-c", script, "bash",
                        COMPLETION] + list(words), capture_output=True, text=True,
                       env=e, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completion_parses():
    r = subprocess.run(["bash", "-n", COMPLETION], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, "")


def test_completion_registers_when_sourced(tmp_path):
    r = subprocess.run(["/bin/bash", "--norc", "--noprofile", "-c",
                        'source "$1" && complete -p vaultsyncctl', "bash", COMPLETION],
                       capture_output=True, text=True, env=clean_env(tmp_path))
    assert r.stdout.strip() == "complete -F _vaultsyncctl vaultsyncctl", r.stderr


def test_completion_commands(tmp_path):
    assert complete(["vaultsyncctl", "lo"], tmp_path) == ["lock"]
    assert complete(["vaultsyncctl", "-s", "/x.sock", "--user", "re"], tmp_path) == ["reload"]
    help_ = help_text("vaultsyncctl", tmp_path)
    assert sorted(complete(["vaultsyncctl", ""], tmp_path)) == ctl_commands(help_)
    assert set(complete(["vaultsyncctl", "-"], tmp_path)) == {"-s", "--user", "-h", "--help"}


def test_completion_options(tmp_path):
    c = lambda *w: complete(["vaultsyncctl"] + list(w), tmp_path)
    assert c("push", "v", "-") == ["--force"]
    assert sorted(c("pull", "v", "--")) == ["--passphrase-file", "--version"]
    assert c("pull", "v", "--version", "") == []
    assert sorted(c("status", "--")) == ["--json", "--ui"]
    assert c("status", "--ui", "") == []
    assert c("status", "v", "-") == ["--json"]
    assert c("stop", "") == []
    assert "-" in c("unlock", "v", "--passphrase-file", "")


def write_conf(tmp):
    (tmp / "conf.d").mkdir()
    (tmp / "vaultsyncd.conf").write_text(
        "# comment\nLogFormat text\nInclude conf.d/*.conf\n"
        "vault = alpha\n\tPath /dev/shm/a\nVAULT \"beta.two\"\n\tPath /dev/shm/b\n")
    (tmp / "conf.d" / "10-work.conf").write_text("Vault\twork\n  Path /run/vaults/work\n")
    # The daemon would refuse the loop; completion must merely not hang on it.
    (tmp / "conf.d" / "20-loop.conf").write_text("Include ../vaultsyncd.conf\n")
    return str(tmp / "vaultsyncd.conf")


def test_completion_vaults_from_config_file(tmp_path):
    env = {"VAULTSYNC_CONF": write_conf(tmp_path),
           "VAULTSYNC_SOCKET": str(tmp_path / "no-daemon.sock")}
    path = "%s:/usr/bin:/bin" % os.path.dirname(binpath("vaultsyncctl"))
    got = complete(["vaultsyncctl", "unlock", ""], tmp_path, env, path)
    assert sorted(got) == ["alpha", "beta.two", "work"]
    assert complete(["vaultsyncctl", "sync", "w"], tmp_path, env, path) == ["work"]
    assert complete(["vaultsyncctl", "lock", "alpha", ""], tmp_path, env, path) == []


def test_completion_vaults_from_user_config(tmp_path):
    cfg = tmp_path / "cfg" / "vaultsync"
    cfg.mkdir(parents=True)
    (cfg / "vaultsyncd.conf").write_text("Vault mine\n\tPath /dev/shm/m\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "VAULTSYNC_SOCKET": str(tmp_path / "no-daemon.sock")}
    assert complete(["vaultsyncctl", "--user", "init", ""], tmp_path, env) == ["mine"]


def test_completion_vaults_from_daemon(daemon_factory, tmp_path):
    d = daemon_factory(user_mode=not IS_ROOT, vault_conf=(
        "Vault demo\n  Path %s\n  Mount no\n"
        "Vault second.v\n  Path %s/v2\n  Mount no\n") % (tmp_path, tmp_path)).start()
    words = ["vaultsyncctl", "-s", d.sock, "sync", ""]
    env = {"VAULTSYNC_CONF": str(tmp_path / "absent.conf")}
    builddir = os.path.dirname(binpath("vaultsyncctl"))
    if shutil.which("jq"):
        got = complete(words, tmp_path, env, "%s:/usr/bin:/bin" % builddir)
        assert sorted(got) == ["demo", "second.v"]
    # Without jq (nor anything else on PATH) the script reads the JSON itself.
    only = tmp_path / "only-ctl"
    only.mkdir()
    os.symlink(binpath("vaultsyncctl"), only / "vaultsyncctl")
    assert sorted(complete(words, tmp_path, env, str(only))) == ["demo", "second.v"]
