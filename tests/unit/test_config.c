/*
 * Unit tests for common/config.c: defaults, every keyword, value parsers,
 * error locations, Include handling and the dump round trip.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

/* The same fallbacks config.c uses when the build does not pass them. */
#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef DATADIR
#define DATADIR		"/usr/local/share"
#endif

#define R1	"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
#define R2	"age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
#define MINI	"Vault v\nPath /v\n"
#define TNAME	"/nonexistent/test.conf"

static struct cfg_env
env_system(void)
{
	struct cfg_env e;

	memset(&e, 0, sizeof(e));
	e.mode = CFG_SYSTEM;
	strcpy(e.home, "/root");
	strcpy(e.hostname, "testhost");
	e.uid = 0;
	return e;
}

static struct cfg_env
env_user(void)
{
	struct cfg_env e;

	memset(&e, 0, sizeof(e));
	e.mode = CFG_USER;
	strcpy(e.home, "/home/u");
	strcpy(e.xdg_config_home, "/home/u/.cfg");
	strcpy(e.xdg_state_home, "/home/u/.st");
	strcpy(e.xdg_runtime_dir, "/run/user/1000");
	strcpy(e.hostname, "laptop");
	e.uid = 1000;
	return e;
}

static int
load_env(struct cfg *c, const char *text, const struct cfg_env *e,
    struct cfg_err *err)
{
	return cfg_load_buffer(c, TNAME, text, strlen(text), e, err);
}

static void
must_load(struct cfg *c, const char *text, const struct cfg_env *e)
{
	struct cfg_err err;

	if (load_env(c, text, e, &err) != 0)
		fail_msg("unexpected error %s:%d: %s\n--- input ---\n%s",
		    err.file, err.line, err.msg, text);
}

static void
must_fail(const char *text, int line, const char *substr)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;

	if (load_env(&c, text, &e, &err) == 0) {
		cfg_free(&c);
		fail_msg("expected an error (%s) for:\n%s", substr, text);
	}
	if (err.line != line || strcasestr(err.msg, substr) == NULL)
		fail_msg("for:\n%s\nwant line %d '%s', got %s:%d: %s", text,
		    line, substr, err.file, err.line, err.msg);
	/* On error the struct is left freed. */
	assert_null(c.vaults);
	assert_int_equal(c.nvaults, 0);
}

static char *
dump_str(const struct cfg *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(cfg_dump(c, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The dump of c holds each of the NULL-terminated lines; c is freed. */
static void
dump_has_and_free(struct cfg *c, const char *const *lines)
{
	char *d = dump_str(c);

	for (; *lines != NULL; lines++)
		if (strstr(d, *lines) == NULL)
			fail_msg("the dump lacks %s", *lines);
	free(d);
	cfg_free(c);
}

/* ---- defaults ---------------------------------------------------------- */

static void
test_defaults_system(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	const struct cfg_vault *v;

	(void)state;
	must_load(&c, MINI, &e);
	assert_int_equal(c.mode, CFG_SYSTEM);
	assert_string_equal(c.file, TNAME);
	assert_string_equal(c.runtime_dir, "/run/vaultsync");
	assert_string_equal(c.state_dir, "/var/lib/vaultsync");
	assert_string_equal(c.control_socket, "/run/vaultsync/ctl.sock");
	assert_string_equal(c.control_group, "vaultsync");
	assert_string_equal(c.privsep_user, "_vaultsync");
	assert_string_equal(c.privsep_chroot, DATADIR "/vaultsync/empty");
	assert_string_equal(c.device_id, "testhost");
	assert_int_equal(c.log_format, CFG_LOG_JSON);
	assert_int_equal(c.log_level, CFG_LVL_INFO);
	assert_int_equal(c.interval_ms, 300000);
	assert_int_equal(c.watcher_debounce_ms, 500);
	assert_int_equal(c.head_poll_interval_ms, 10000);
	assert_int_equal(c.head_poll_max_interval_ms, 120000);
	assert_int_equal(c.status_api, 1);
	assert_string_equal(c.status_listen, "127.0.0.1:0");
	assert_int_equal(c.status_family, AF_INET);
	assert_memory_equal(c.status_addr, "\x7f\x00\x00\x01", 4);
	assert_int_equal(c.status_port, 0);
	assert_int_equal(c.status_require_auth, 1);
	assert_int_equal(c.status_tick_history, 100);
	assert_string_equal(c.credentials_file, SYSCONFDIR "/vaultsync/s3.env");
	assert_int_equal(c.multipart_threshold, 64 << 20);

	assert_int_equal(c.nvaults, 1);
	v = &c.vaults[0];
	assert_string_equal(v->name, "v");
	assert_string_equal(v->file, TNAME);
	assert_int_equal(v->line, 1);
	assert_string_equal(v->path, "/v");
	assert_int_equal(v->mount, 1);
	assert_int_equal(v->mount_size, 64 << 20);
	assert_string_equal(v->owner_user, "");
	assert_string_equal(v->owner_group, "");
	assert_int_equal(v->nrecipients, 0);
	assert_int_equal(v->remote_kind, CFG_REMOTE_NONE);
	assert_string_equal(v->remote, "");
	assert_string_equal(v->endpoint, "https://s3.amazonaws.com");
	assert_string_equal(v->region, "us-east-1");
	assert_int_equal(v->path_style, 0);
	assert_string_equal(v->credentials_file, SYSCONFDIR "/vaultsync/s3.env");
	assert_int_equal(v->interval_ms, 300000);
	assert_int_equal(v->history_interval_ms, 0);
	assert_int_equal(v->history_keep, 30);
	cfg_free(&c);
}

static void
test_defaults_user_xdg(void **state)
{
	struct cfg_env e = env_user();
	struct cfg c;

	(void)state;
	must_load(&c, MINI, &e);
	assert_int_equal(c.mode, CFG_USER);
	assert_string_equal(c.runtime_dir, "/run/user/1000/vaultsync");
	assert_string_equal(c.state_dir, "/home/u/.st/vaultsync");
	assert_string_equal(c.control_socket,
	    "/run/user/1000/vaultsync/ctl.sock");
	assert_string_equal(c.credentials_file,
	    "/home/u/.cfg/vaultsync/s3.env");
	assert_string_equal(c.device_id, "laptop");
	assert_int_equal(c.vaults[0].mount, 0);
	assert_string_equal(c.vaults[0].credentials_file,
	    "/home/u/.cfg/vaultsync/s3.env");
	cfg_free(&c);
}

static void
test_defaults_user_home(void **state)
{
	struct cfg_env e = env_user();
	struct cfg c;
	struct cfg_err err;

	(void)state;
	e.xdg_config_home[0] = e.xdg_state_home[0] = e.xdg_runtime_dir[0] = 0;
	e.uid = 4242;
	must_load(&c, MINI, &e);
	assert_string_equal(c.runtime_dir, "/run/user/4242/vaultsync");
	assert_string_equal(c.state_dir, "/home/u/.local/state/vaultsync");
	assert_string_equal(c.credentials_file,
	    "/home/u/.config/vaultsync/s3.env");
	cfg_free(&c);

	/* No usable HOME: an error unless the paths are set explicitly. */
	e.home[0] = '\0';
	assert_int_equal(load_env(&c, MINI, &e, &err), -1);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.msg, "StateDir"));
	must_load(&c, "StateDir /s\nCredentialsFile /c\n" MINI, &e);
	assert_string_equal(c.state_dir, "/s");
	cfg_free(&c);
}

static void
test_defaults_credentials_directory(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;

	(void)state;
	strcpy(e.credentials_directory, "/run/credentials/vaultsyncd.service");
	must_load(&c, MINI, &e);
	assert_string_equal(c.credentials_file,
	    "/run/credentials/vaultsyncd.service/s3");
	assert_string_equal(c.vaults[0].credentials_file,
	    "/run/credentials/vaultsyncd.service/s3");
	cfg_free(&c);

	e = env_user();
	strcpy(e.credentials_directory, "/run/creds");
	must_load(&c, MINI, &e);
	assert_string_equal(c.credentials_file, "/run/creds/s3");
	cfg_free(&c);
}

static void
test_defaults_bad_hostname(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;

	(void)state;
	strcpy(e.hostname, "bad host");
	must_load(&c, MINI, &e);
	assert_string_equal(c.device_id, "localhost");
	cfg_free(&c);
}

/* ---- every keyword ----------------------------------------------------- */

static const char all_keywords[] =
    "# every keyword\n"
    "RuntimeDir /run/vs\n"
    "StateDir /var/lib/vs\n"
    "ControlSocket /run/vs/control.sock\n"
    "ControlGroup wheel\n"
    "PrivsepUser _vs\n"
    "PrivsepChroot /var/empty\n"
    "DeviceId my-box.1\n"
    "LogFormat pretty\n"
    "LogLevel warn\n"
    "Interval 10m\n"
    "WatcherDebounce 250ms\n"
    "HeadPollInterval 5s\n"
    "HeadPollMaxInterval 1h\n"
    "StatusAPI no\n"
    "StatusListen [::1]:8080\n"
    "StatusRequireAuth no\n"
    "StatusTickHistory 500\n"
    "CredentialsFile /etc/vs/s3.env\n"
    "MultipartThreshold 128MiB\n"
    "\n"
    "Vault secrets\n"
    "\tPath /run/secrets\n"
    "\tMount no\n"
    "\tMountSize 1G\n"
    "\tOwner alice:staff\n"
    "\tRecipient " R1 "\n"
    "\tRecipient " R2 "\n"
    "\tRemote s3://my-bucket/a/b/\n"
    "\tEndpoint http://127.0.0.1:9000\n"
    "\tRegion eu-west-1\n"
    "\tPathStyle yes\n"
    "\tCredentialsFile /etc/vs/other.env\n"
    "\tInterval 1h30m\n"
    "\tHistoryInterval 1d\n"
    "\tHistoryKeep 0\n"
    "Vault local\n"
    "\tPath /run/local\n"
    "\tRemote dir:/srv/backup\n"
    "\tOwner bob\n"
    "\tHistoryInterval off\n";

static void
test_all_keywords(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	const struct cfg_vault *v;
	static const uint8_t lo6[16] = { [15] = 1 };

	(void)state;
	must_load(&c, all_keywords, &e);
	assert_string_equal(c.runtime_dir, "/run/vs");
	assert_string_equal(c.state_dir, "/var/lib/vs");
	assert_string_equal(c.control_socket, "/run/vs/control.sock");
	assert_string_equal(c.control_group, "wheel");
	assert_string_equal(c.privsep_user, "_vs");
	assert_string_equal(c.privsep_chroot, "/var/empty");
	assert_string_equal(c.device_id, "my-box.1");
	assert_int_equal(c.log_format, CFG_LOG_PRETTY);
	assert_int_equal(c.log_level, CFG_LVL_WARN);
	assert_int_equal(c.interval_ms, 600000);
	assert_int_equal(c.watcher_debounce_ms, 250);
	assert_int_equal(c.head_poll_interval_ms, 5000);
	assert_int_equal(c.head_poll_max_interval_ms, 3600000);
	assert_int_equal(c.status_api, 0);
	assert_string_equal(c.status_listen, "[::1]:8080");
	assert_int_equal(c.status_family, AF_INET6);
	assert_memory_equal(c.status_addr, lo6, 16);
	assert_int_equal(c.status_port, 8080);
	assert_int_equal(c.status_require_auth, 0);
	assert_int_equal(c.status_tick_history, 500);
	assert_string_equal(c.credentials_file, "/etc/vs/s3.env");
	assert_int_equal(c.multipart_threshold, 128ULL << 20);
	assert_int_equal(c.nvaults, 2);

	v = cfg_vault_find(&c, "secrets");
	assert_non_null(v);
	assert_int_equal(v->line, 22);
	assert_string_equal(v->path, "/run/secrets");
	assert_int_equal(v->mount, 0);
	assert_int_equal(v->mount_size, 1ULL << 30);
	assert_string_equal(v->owner_user, "alice");
	assert_string_equal(v->owner_group, "staff");
	assert_int_equal(v->nrecipients, 2);
	assert_string_equal(v->recipients[0], R1);
	assert_string_equal(v->recipients[1], R2);
	assert_int_equal(v->remote_kind, CFG_REMOTE_S3);
	assert_string_equal(v->remote, "s3://my-bucket/a/b/");
	assert_string_equal(v->bucket, "my-bucket");
	assert_string_equal(v->prefix, "a/b");
	assert_string_equal(v->endpoint, "http://127.0.0.1:9000");
	assert_string_equal(v->region, "eu-west-1");
	assert_int_equal(v->path_style, 1);
	assert_string_equal(v->credentials_file, "/etc/vs/other.env");
	assert_int_equal(v->interval_ms, 5400000);
	assert_int_equal(v->history_interval_ms, 86400000);
	assert_int_equal(v->history_keep, 0);

	v = cfg_vault_find(&c, "local");
	assert_non_null(v);
	assert_int_equal(v->mount, 1);
	assert_int_equal(v->remote_kind, CFG_REMOTE_DIR);
	assert_string_equal(v->remote_dir, "/srv/backup");
	assert_string_equal(v->owner_user, "bob");
	assert_string_equal(v->owner_group, "");
	assert_int_equal(v->history_interval_ms, 0);
	assert_int_equal(v->interval_ms, 600000);
	assert_string_equal(v->credentials_file, "/etc/vs/s3.env");
	assert_null(cfg_vault_find(&c, "nope"));
	assert_null(cfg_vault_find(&c, "Secrets"));
	cfg_free(&c);
}

static void
test_enum_values(void **state)
{
	static const struct {
		const char *line;
		int format, level;
	} t[] = {
		{ "LogFormat json", CFG_LOG_JSON, CFG_LVL_INFO },
		{ "LogFormat text", CFG_LOG_TEXT, CFG_LVL_INFO },
		{ "LogFormat PRETTY", CFG_LOG_PRETTY, CFG_LVL_INFO },
		{ "LogLevel error", CFG_LOG_JSON, CFG_LVL_ERROR },
		{ "LogLevel warning", CFG_LOG_JSON, CFG_LVL_WARN },
		{ "LogLevel warn", CFG_LOG_JSON, CFG_LVL_WARN },
		{ "LogLevel info", CFG_LOG_JSON, CFG_LVL_INFO },
		{ "LogLevel Debug", CFG_LOG_JSON, CFG_LVL_DEBUG },
	};
	struct cfg_env e = env_system();
	struct cfg c;
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(buf, sizeof(buf), "%s\n" MINI, t[i].line);
		must_load(&c, buf, &e);
		assert_int_equal(c.log_format, t[i].format);
		assert_int_equal(c.log_level, t[i].level);
		cfg_free(&c);
	}
}

/* ---- syntax ------------------------------------------------------------ */

static void
test_syntax_forms(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;

	(void)state;
	must_load(&c,
	    "  # indented comment\n"
	    "\n"
	    "   \t \n"
	    "interval=2m\n"
	    "WATCHERDEBOUNCE = 1s\n"
	    "statuslisten\t=\t127.0.0.5:65535\n"
	    "StateDir \"/var/lib/with space\"\n"
	    "RuntimeDir /run/a#b\n"
	    "Vault x\r\n"
	    "Path=\"/v\"   \r\n"
	    "HistoryKeep \"7\"\n"
	    "Owner root",
	    &e);
	assert_int_equal(c.interval_ms, 120000);
	assert_int_equal(c.watcher_debounce_ms, 1000);
	assert_string_equal(c.status_listen, "127.0.0.5:65535");
	assert_memory_equal(c.status_addr, "\x7f\x00\x00\x05", 4);
	assert_int_equal(c.status_port, 65535);
	assert_string_equal(c.state_dir, "/var/lib/with space");
	assert_string_equal(c.runtime_dir, "/run/a#b");
	assert_string_equal(c.control_socket, "/run/a#b/ctl.sock");
	assert_string_equal(c.vaults[0].path, "/v");
	assert_int_equal(c.vaults[0].history_keep, 7);
	assert_string_equal(c.vaults[0].owner_user, "root");
	cfg_free(&c);
}

static void
test_syntax_errors(void **state)
{
	char big[5000];

	(void)state;
	must_fail("Bogus 1\n" MINI, 1, "unknown keyword 'Bogus'");
	must_fail(MINI "\n\nFrobnicate\n", 5, "unknown keyword");
	must_fail("Interval 5m extra\n" MINI, 1, "garbage at end of line");
	must_fail("StateDir \"/a b\" c\n" MINI, 1, "garbage at end of line");
	must_fail("StateDir \"/a b\"c\n" MINI, 1, "garbage at end of line");
	must_fail("StateDir \"/a b\n" MINI, 1, "unterminated quote");
	must_fail("Interval\n" MINI, 1, "Interval requires a value");
	must_fail("Interval   \n" MINI, 1, "Interval requires a value");
	must_fail("Interval =\n" MINI, 1, "Interval requires a value");
	must_fail("Interval \"\"\n" MINI, 1, "Interval requires a value");
	must_fail("= 5m\n" MINI, 1, "missing keyword");
	must_fail("StateDir \"/a\tb\"\n" MINI, 1, "control character");
	must_fail("StateDir /a\x01" "b\n" MINI, 1, "control character");
	must_fail("StateDir /a\rb\n" MINI, 1, "control character");

	/* A 4095-byte line is fine, 4096 is not. */
	memset(big, ' ', sizeof(big));
	memcpy(big, "#", 1);
	big[4095] = '\n';
	strcpy(big + 4096, MINI);
	{
		struct cfg_env e = env_system();
		struct cfg c;

		must_load(&c, big, &e);
		cfg_free(&c);
	}
	memset(big, ' ', sizeof(big));
	memcpy(big, "#", 1);
	big[4096] = '\n';
	strcpy(big + 4097, MINI);
	must_fail(big, 1, "line is too long");
}

static void
test_nul_byte(void **state)
{
	static const char text[] = "Vault v\nPath /v\nInter\0val 5m\n";
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;

	(void)state;
	assert_int_equal(cfg_load_buffer(&c, TNAME, text, sizeof(text) - 1, &e,
	    &err), -1);
	assert_int_equal(err.line, 3);
	assert_non_null(strstr(err.msg, "NUL"));
	assert_string_equal(err.file, TNAME);
}

/* ---- semantic errors, each at its line --------------------------------- */

static void
test_semantic_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} t[] = {
		{ "Interval 5m\nInterval 6m\n" MINI, 2,
		    "duplicate Interval globally (first given at "
		    TNAME ":1)" },
		{ "Vault v\nPath /v\nPath /w\n", 3,
		    "duplicate Path in this Vault block (first given at "
		    TNAME ":2)" },
		{ "Vault v\nPath /v\nVault w\nPath /w\nVault v\nPath /x\n", 5,
		    "duplicate Vault v (first defined at " TNAME ":1)" },
		{ MINI "LogLevel debug\n", 3,
		    "LogLevel is not allowed inside a Vault block (started at "
		    TNAME ":1)" },
		{ MINI "Include /x\n", 3, "Include is not allowed inside a "
		    "Vault block" },
		{ "Path /v\n" MINI, 1, "Path is only allowed inside a Vault" },
		{ "Recipient " R1 "\n" MINI, 1, "only allowed inside a Vault" },
		{ "HistoryKeep 3\n" MINI, 1, "only allowed inside a Vault" },
		{ "Vault v\nMount yes\n", 1, "Vault v has no Path" },
		{ "Vault v\nPath v\n", 2, "Path must be an absolute path" },
		{ "Vault -v\nPath /v\n", 1, "bad Vault name" },
		{ "Vault .v\nPath /v\n", 1, "bad Vault name" },
		{ "Vault a/b\nPath /v\n", 1, "bad Vault name" },
		{ "Vault aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaa\nPath /v\n", 1, "bad Vault name" },
		{ "", 0, "no vaults configured" },
		{ "# only comments\nInterval 1m\n", 0, "no vaults configured" },
		{ "StatusAPI maybe\n" MINI, 1, "StatusAPI must be yes or no" },
		{ "LogFormat xml\n" MINI, 1, "LogFormat must be json" },
		{ "LogLevel verbose\n" MINI, 1, "LogLevel must be" },
		{ "Interval 5\n" MINI, 1, "bad duration" },
		{ "Interval 5x\n" MINI, 1, "bad duration" },
		{ "Interval 0s\n" MINI, 1, "out of range" },
		{ "Interval 8d\n" MINI, 1, "out of range (1s to 7d)" },
		{ "Interval 99999999999999999999999s\n" MINI, 1,
		    "out of range" },
		{ "WatcherDebounce 61s\n" MINI, 1, "out of range" },
		{ "HeadPollInterval 2h\n" MINI, 1, "out of range" },
		{ "HeadPollMaxInterval 2d\n" MINI, 1, "out of range" },
		{ "HeadPollInterval 30s\nHeadPollMaxInterval 20s\n" MINI, 2,
		    "HeadPollMaxInterval (20s) must not be shorter than "
		    "HeadPollInterval (30s)" },
		{ "HeadPollInterval 5m\n" MINI, 0,
		    "must not be shorter than HeadPollInterval" },
		{ MINI "HistoryInterval 30s\n", 3, "out of range" },
		{ MINI "HistoryInterval never\n", 3, "bad duration" },
		{ MINI "HistoryKeep -1\n", 3, "HistoryKeep must be" },
		{ MINI "HistoryKeep 100001\n", 3, "HistoryKeep must be" },
		{ "StatusTickHistory 0\n" MINI, 1, "StatusTickHistory" },
		{ "StatusTickHistory 100001\n" MINI, 1, "StatusTickHistory" },
		{ "StatusTickHistory 1e3\n" MINI, 1, "StatusTickHistory" },
		{ MINI "MountSize 1023K\n", 3, "out of range (1M to 1T)" },
		{ MINI "MountSize 2T\n", 3, "out of range" },
		{ MINI "MountSize 64X\n", 3, "bad size" },
		{ MINI "MountSize -1M\n", 3, "bad size" },
		{ MINI "MountSize 99999999999999999999999\n", 3,
		    "out of range" },
		{ "MultipartThreshold 4M\n" MINI, 1, "out of range (5M to 5G)" },
		{ "MultipartThreshold 6G\n" MINI, 1, "out of range" },
		{ MINI "Mount on\n", 3, "Mount must be yes or no" },
		{ MINI "PathStyle 1\n", 3, "PathStyle must be yes or no" },
		{ "RuntimeDir run\n" MINI, 1, "RuntimeDir must be an absolute" },
		{ "StateDir ~/x\n" MINI, 1, "StateDir must be an absolute" },
		{ "ControlSocket /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaa.sock\n" MINI, 1, "ControlSocket is too long" },
		{ "RuntimeDir /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaa\n" MINI, 1, "ControlSocket RuntimeDir/ctl.sock" },
		{ "ControlGroup -wheel\n" MINI, 1, "bad user or group name" },
		{ "PrivsepUser a:b\n" MINI, 1, "bad user or group name" },
		{ "PrivsepUser aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" MINI, 1,
		    "bad user or group name" },
		{ MINI "Owner alice:\n", 3, "Owner must be USER" },
		{ MINI "Owner :staff\n", 3, "Owner must be USER" },
		{ MINI "Owner a:b:c\n", 3, "Owner must be USER" },
		{ "DeviceId my box\n" MINI, 1, "garbage at end of line" },
		{ "DeviceId \"my box\"\n" MINI, 1, "DeviceId must be" },
		{ "DeviceId a/b\n" MINI, 1, "DeviceId must be" },
		{ MINI "Region EU\n", 3, "Region must be" },
		{ MINI "Recipient age1short\n", 3, "not an age X25519" },
		{ MINI "Recipient " R1 "\nRecipient " R1 "\n", 4,
		    "Recipient given twice" },
		{ MINI "Recipient AGE1QL3Z7HJY54PW3HYWW5AYYFG7ZQGVC7W3J2ELW8ZMRJ2K"
		    "G5SFN9AQMCAC8P\n", 3, "not an age X25519" },
		{ MINI "Recipient age1bl3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2k"
		    "g5sfn9aqmcac8p\n", 3, "not an age X25519" },
		{ MINI "Recipient ssh-ed25519\n", 3, "not an age X25519" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		must_fail(t[i].text, t[i].line, t[i].msg);
}

/* ---- value parsers ----------------------------------------------------- */

static void
test_durations(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{ "0s", 0 }, { "0ms", 0 }, { "500ms", 500 }, { "1s", 1000 },
		{ "30s", 30000 }, { "5m", 300000 }, { "1h", 3600000 },
		{ "1h30m", 5400000 }, { "1d", 86400000 },
		{ "1m30s250ms", 90250 }, { "30m1h", 5400000 },
		{ "365d", 365ULL * 86400000 }, { "0001s", 1000 },
		{ "8760h", 365ULL * 86400000 },
	};
	static const char *bad[] = {
		"", "5", "0", "s", "ms", "5 m", "-5s", "+5s", "5S", "5M",
		"5sec", "5min", "1.5s", "1h30", "5ms5", "1y", "5w", "366d",
		"365d1ms", "99999999999999999999999999999ms",
		"18446744073709551616ms", "9223372036854775807d", "1s ", " 1s",
	};
	uint64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		if (cfg_parse_duration(good[i].s, &ms) != 0)
			fail_msg("'%s' rejected", good[i].s);
		assert_int_equal(ms, good[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (cfg_parse_duration(bad[i], &ms) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(ms, 12345);
	}
}

static void
test_format_duration(void **state)
{
	static const struct {
		uint64_t ms;
		const char *s;
	} t[] = {
		{ 0, "0s" }, { 500, "500ms" }, { 1000, "1s" }, { 1500, "1s500ms" },
		{ 120000, "2m" }, { 300000, "5m" }, { 5400000, "1h30m" },
		{ 86400000, "1d" }, { 90061001, "1d1h1m1s1ms" },
		{ 604800000, "7d" }, { 365ULL * 86400000, "365d" },
	};
	char buf[64], tiny[4];
	uint64_t back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cfg_format_duration(t[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, t[i].s);
		assert_int_equal(cfg_parse_duration(buf, &back), 0);
		assert_int_equal(back, t[i].ms);
	}
	/* A short buffer truncates, never overflows. */
	memset(tiny, 'x', sizeof(tiny));
	cfg_format_duration(90061001, tiny, sizeof(tiny));
	assert_true(strlen(tiny) < sizeof(tiny));
}

static void
test_sizes(void **state)
{
	static const struct {
		const char *s;
		uint64_t b;
	} good[] = {
		{ "0", 0 }, { "100", 100 }, { "100B", 100 }, { "1K", 1024 },
		{ "1k", 1024 }, { "1KB", 1024 }, { "1KiB", 1024 },
		{ "64M", 64ULL << 20 }, { "64m", 64ULL << 20 },
		{ "64MiB", 64ULL << 20 }, { "64MB", 64ULL << 20 },
		{ "64mib", 64ULL << 20 }, { "5G", 5ULL << 30 },
		{ "1T", 1ULL << 40 }, { "1536K", 1536ULL << 10 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *bad[] = {
		"", "M", "-1", "+1", "64X", "64 M", "64Mi", "64MiBB", "64iB",
		"1.5M", "64MB ", "0x10", "16777216T", "18446744073709551616",
		"99999999999999999999999999", "64P", "64E", "64Kb2",
	};
	uint64_t b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		b = 7;
		if (cfg_parse_size(good[i].s, &b) != 0)
			fail_msg("'%s' rejected", good[i].s);
		assert_int_equal(b, good[i].b);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = 7;
		if (cfg_parse_size(bad[i], &b) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(b, 7);
	}
}

static void
test_format_size(void **state)
{
	static const struct {
		uint64_t b;
		const char *s;
	} t[] = {
		{ 0, "0" }, { 100, "100" }, { 1024, "1K" }, { 1025, "1025" },
		{ 64ULL << 20, "64M" }, { 1536ULL << 10, "1536K" },
		{ 5ULL << 30, "5G" }, { 1ULL << 40, "1T" },
		{ 3ULL << 41, "6T" }, { (1ULL << 30) + (1ULL << 20), "1025M" },
	};
	char buf[32];
	uint64_t back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cfg_format_size(t[i].b, buf, sizeof(buf));
		assert_string_equal(buf, t[i].s);
		assert_int_equal(cfg_parse_size(buf, &back), 0);
		assert_int_equal(back, t[i].b);
	}
}

static void
test_status_listen(void **state)
{
	static const struct {
		const char *s;
		int family;
		const char *addr;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:0", AF_INET, "\x7f\x00\x00\x01", 0 },
		{ "127.1.2.3:8080", AF_INET, "\x7f\x01\x02\x03", 8080 },
		{ "127.255.255.254:65535", AF_INET, "\x7f\xff\xff\xfe", 65535 },
		{ "localhost:9", AF_INET, "\x7f\x00\x00\x01", 9 },
		{ "[::1]:443", AF_INET6, NULL, 443 },
		{ "[0:0:0:0:0:0:0:1]:1", AF_INET6, NULL, 1 },
	};
	static const char *bad[] = {
		"0.0.0.0:80", "10.0.0.1:80", "192.168.1.1:80", "[::]:80",
		"example.com:80", "128.0.0.1:80", "[::ffff:127.0.0.1]:80",
		"::1:80", "[fe80::1]:80", "127.0.0.1", "127.0.0.1:",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http",
		"127.0.0.1:0080x", "127.0.0.1:000080", ":80", "[::1]80",
		"[::1", "127.1:80", "localhost.:80", "[localhost]:80",
	};
	static const uint8_t lo6[16] = { [15] = 1 };
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), "StatusListen %s\n" MINI,
		    good[i].s);
		must_load(&c, buf, &e);
		assert_string_equal(c.status_listen, good[i].s);
		assert_int_equal(c.status_family, good[i].family);
		if (good[i].family == AF_INET)
			assert_memory_equal(c.status_addr, good[i].addr, 4);
		else
			assert_memory_equal(c.status_addr, lo6, 16);
		assert_int_equal(c.status_port, good[i].port);
		cfg_free(&c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "StatusListen %s\n" MINI, bad[i]);
		if (load_env(&c, buf, &e, &err) == 0)
			fail_msg("StatusListen %s accepted", bad[i]);
		assert_int_equal(err.line, 1);
		assert_non_null(strstr(err.msg, "StatusListen"));
	}
	must_fail("StatusListen 0.0.0.0:80\n" MINI, 1,
	    "StatusListen must be a loopback address");
	must_fail("StatusListen [::]:80\n" MINI, 1, "must be a loopback");
	must_fail("StatusListen 127.0.0.1:65536\n" MINI, 1, "bad port");
}

static void
test_remote(void **state)
{
	static const struct {
		const char *s;
		int kind;
		const char *bucket, *prefix, *dir;
	} good[] = {
		{ "s3://bucket", CFG_REMOTE_S3, "bucket", "", "" },
		{ "s3://bucket/", CFG_REMOTE_S3, "bucket", "", "" },
		{ "s3://my.bucket-1/pre", CFG_REMOTE_S3, "my.bucket-1", "pre", "" },
		{ "s3://abc/a/b/c/", CFG_REMOTE_S3, "abc", "a/b/c", "" },
		{ "s3://abc/a.b/..c/x~y+z", CFG_REMOTE_S3, "abc", "a.b/..c/x~y+z",
		    "" },
		{ "s3://" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaa", CFG_REMOTE_S3, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaa", "", "" },
		{ "dir:/srv/vs", CFG_REMOTE_DIR, "", "", "/srv/vs" },
		{ "dir:/srv/./vs/", CFG_REMOTE_DIR, "", "", "/srv/./vs/" },
		{ "dir:/", CFG_REMOTE_DIR, "", "", "/" },
	};
	static const char *bad[] = {
		"s3://", "s3://ab", "s3://Bucket", "s3://-bucket",
		"s3://bucket-", "s3://buck_et", "s3://bu cket",
		"s3://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"s3://bucket//x", "s3://bucket//", "s3://bucket/a//b",
		"s3://bucket/./x", "s3://bucket/x/..", "s3://bucket/x/../y",
		"s3://bucket/a\177b", "s3://bucket/\xc3\xa9",
		"dir:relative", "dir:", "dir:/a/../b", "dir:/..",
		"http://bucket", "S3://bucket", "bucket", "file:/x",
	};
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char buf[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), MINI "Remote \"%s\"\n", good[i].s);
		must_load(&c, buf, &e);
		assert_int_equal(c.vaults[0].remote_kind, good[i].kind);
		assert_string_equal(c.vaults[0].remote, good[i].s);
		assert_string_equal(c.vaults[0].bucket, good[i].bucket);
		assert_string_equal(c.vaults[0].prefix, good[i].prefix);
		assert_string_equal(c.vaults[0].remote_dir, good[i].dir);
		cfg_free(&c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), MINI "Remote \"%s\"\n", bad[i]);
		if (load_env(&c, buf, &e, &err) == 0)
			fail_msg("Remote %s accepted", bad[i]);
		assert_int_equal(err.line, 3);
		if (strstr(err.msg, "Remote") == NULL &&
		    strstr(err.msg, "control character") == NULL)
			fail_msg("Remote %s: %s", bad[i], err.msg);
	}
	must_fail(MINI "Remote dir:x\n", 3, "needs an absolute path");
	must_fail(MINI "Remote s3://B\n", 3, "bad S3 bucket name");
}

static void
test_endpoint(void **state)
{
	static const char *good[] = {
		"https://s3.amazonaws.com", "https://s3.eu-west-1.amazonaws.com/",
		"https://minio.example.org:9000", "HTTPS://Example.COM",
		"https://[2001:db8::1]:443/base", "http://127.0.0.1",
		"http://127.0.0.1:7480", "http://127.9.9.9:80/", "http://[::1]:9000",
		"http://localhost:9000", "http://LOCALHOST", "https://10.0.0.1",
	};
	static const char *bad[] = {
		"s3.amazonaws.com", "ftp://x", "http://s3.amazonaws.com",
		"http://10.0.0.1:9000", "http://[::]:9000", "http://0.0.0.0",
		"http://localhost.example.com", "http://127.0.0.1.nip.io",
		"https://", "https://:443", "https://host:0", "https://host:65536",
		"https://host:", "https://host:x", "https://user:pw@host",
		"https://[::1", "https://[zz]:1", "https://[::1]x",
		"https://ho_st", "http://",
	};
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char buf[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), MINI "Endpoint %s\n", good[i]);
		must_load(&c, buf, &e);
		assert_string_equal(c.vaults[0].endpoint, good[i]);
		cfg_free(&c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), MINI "Endpoint %s\n", bad[i]);
		if (load_env(&c, buf, &e, &err) == 0)
			fail_msg("Endpoint %s accepted", bad[i]);
		assert_int_equal(err.line, 3);
		assert_non_null(strstr(err.msg, "Endpoint"));
	}
	must_fail(MINI "Endpoint http://s3.example.com\n", 3,
	    "TLS is required");
}

/* ---- precedence and effective values ----------------------------------- */

static void
test_precedence(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	const struct cfg_vault *a, *b;

	(void)state;
	must_load(&c,
	    "Vault a\nPath /a\nInterval 30s\nCredentialsFile /a.env\n"
	    "Vault b\nPath /b\n", &e);
	a = cfg_vault_find(&c, "a");
	b = cfg_vault_find(&c, "b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->interval_ms, 30000);
	assert_string_equal(a->credentials_file, "/a.env");
	assert_int_equal(b->interval_ms, 300000);
	assert_string_equal(b->credentials_file, "/etc/vaultsync/s3.env");
	cfg_free(&c);

	must_load(&c,
	    "Interval 2h\nCredentialsFile /g.env\n"
	    "Vault a\nPath /a\nInterval 10s\n"
	    "Vault b\nPath /b\n", &e);
	a = cfg_vault_find(&c, "a");
	b = cfg_vault_find(&c, "b");
	assert_int_equal(c.interval_ms, 7200000);
	assert_int_equal(a->interval_ms, 10000);
	assert_string_equal(a->credentials_file, "/g.env");
	assert_int_equal(b->interval_ms, 7200000);
	assert_string_equal(b->credentials_file, "/g.env");
	cfg_free(&c);

	/* The same keyword in two scopes is not a duplicate. */
	must_load(&c, "Interval 1m\nVault a\nPath /a\nInterval 1m\n"
	    "Vault b\nPath /b\nInterval 2m\n", &e);
	assert_int_equal(c.vaults[1].interval_ms, 120000);
	cfg_free(&c);

	/* Explicit Mount wins over the mode default. */
	e = env_user();
	must_load(&c, "Vault a\nPath /a\nMount yes\nVault b\nPath /b\n", &e);
	assert_int_equal(c.vaults[0].mount, 1);
	assert_int_equal(c.vaults[1].mount, 0);
	cfg_free(&c);

	/* A configured RuntimeDir moves the default control socket. */
	must_load(&c, "RuntimeDir /tmp/rt\n" MINI, &e);
	assert_string_equal(c.control_socket, "/tmp/rt/ctl.sock");
	cfg_free(&c);
}

/* Watcher: inotify by default, polling per vault, nothing else, not global. */
static void
test_watcher_keyword(void **state)
{
	static const char *const want[] = { "\n\tWatcher inotify\n", "\n\tWatcher polling\n",
		NULL };
	struct cfg_env e = env_system();
	struct cfg c;

	(void)state;
	must_load(&c, "Vault a\nPath /a\nVault b\nPath /b\nwatcher POLLING\n"
	    "Vault c\nPath /c\nWatcher inotify\n", &e);
	assert_int_equal(cfg_vault_find(&c, "a")->watcher_polling, 0);
	assert_int_equal(cfg_vault_find(&c, "b")->watcher_polling, 1);
	assert_int_equal(cfg_vault_find(&c, "c")->watcher_polling, 0);
	dump_has_and_free(&c, want);
	must_fail(MINI "Watcher fanotify\n", 3, "Watcher must be inotify or polling");
	must_fail(MINI "Watcher polling\nWatcher polling\n", 4, "duplicate Watcher");
	must_fail("Watcher polling\n" MINI, 1, "Watcher");
}

/* VerifyInterval: off by default, global or per vault, 0/off disable, a floor. */
static void
test_verify_interval(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	char *d;

	(void)state;
	must_load(&c, MINI, &e);
	assert_int_equal(c.verify_interval_ms, 0);
	assert_int_equal(c.vaults[0].verify_interval_ms, 0);
	d = dump_str(&c);
	assert_non_null(strstr(d, "\nVerifyInterval off\n"));
	assert_non_null(strstr(d, "\n\tVerifyInterval off\n"));
	free(d);
	cfg_free(&c);

	must_load(&c, "VerifyInterval 1h\nVault a\nPath /a\nVerifyInterval 30s\n"
	    "Vault b\nPath /b\nVault c\nPath /c\nverifyinterval off\n"
	    "Vault d\nPath /d\nVerifyInterval 0\n", &e);
	assert_int_equal(c.verify_interval_ms, 3600000);
	assert_int_equal(cfg_vault_find(&c, "a")->verify_interval_ms, 30000);
	assert_int_equal(cfg_vault_find(&c, "b")->verify_interval_ms, 3600000);
	assert_int_equal(cfg_vault_find(&c, "c")->verify_interval_ms, 0);
	assert_int_equal(cfg_vault_find(&c, "d")->verify_interval_ms, 0);
	d = dump_str(&c);
	assert_non_null(strstr(d, "\nVerifyInterval 1h\n"));
	assert_non_null(strstr(d, "\n\tVerifyInterval 30s\n"));
	assert_non_null(strstr(d, "\n\tVerifyInterval off\n"));
	free(d);
	cfg_free(&c);

	must_load(&c, "VerifyInterval 5m\nVault a\nPath /a\nVerifyInterval 1s\n", &e);
	assert_int_equal(c.vaults[0].verify_interval_ms, 1000);
	cfg_free(&c);

	must_fail("VerifyInterval 500ms\n" MINI, 1, "out of range");
	must_fail(MINI "VerifyInterval 8d\n", 3, "out of range");
	must_fail(MINI "VerifyInterval often\n", 3, "bad duration");
	must_fail(MINI "VerifyInterval -1s\n", 3, "VerifyInterval");
	must_fail(MINI "VerifyInterval 1m\nVerifyInterval 2m\n", 4,
	    "duplicate VerifyInterval");
	must_fail("VerifyInterval 1m\nVerifyInterval off\n" MINI, 2,
	    "duplicate VerifyInterval");
}

/* ---- dump round trip ---------------------------------------------------- */

static void
roundtrip(const char *text, const struct cfg_env *e)
{
	struct cfg c1, c2;
	char *d1, *d2;

	must_load(&c1, text, e);
	d1 = dump_str(&c1);
	must_load(&c2, d1, e);
	d2 = dump_str(&c2);
	if (strcmp(d1, d2) != 0)
		fail_msg("dump differs after reparse:\n%s\n---\n%s", d1, d2);
	assert_int_equal(c1.nvaults, c2.nvaults);
	assert_int_equal(c1.interval_ms, c2.interval_ms);
	assert_int_equal(c1.status_port, c2.status_port);
	assert_memory_equal(c1.status_addr, c2.status_addr, 16);
	assert_string_equal(c1.vaults[0].prefix, c2.vaults[0].prefix);
	free(d1);
	free(d2);
	cfg_free(&c1);
	cfg_free(&c2);
}

static void
test_roundtrip(void **state)
{
	struct cfg_env es = env_system(), eu = env_user();
	struct cfg c;
	char *d;

	(void)state;
	roundtrip(MINI, &es);
	roundtrip(MINI, &eu);
	roundtrip(all_keywords, &es);
	roundtrip(all_keywords, &eu);
	roundtrip("VerifyInterval 90s\nVault v\nPath /v\nVerifyInterval off\n"
	    "Vault w\nPath /w\n", &es);
	roundtrip("StateDir \"/var/lib/a b\"\nLogLevel warn\n"
	    "Vault v\nPath \"/run/my vault\"\nRemote \"dir:/srv/x y\"\n"
	    "CredentialsFile \"/etc/s 3.env\"\nHistoryInterval 1d1ms\n"
	    "Interval 1s\nMountSize 1025K\n", &es);

	/* The dump spells out canonical values. */
	must_load(&c, "LogLevel warn\nHeadPollMaxInterval 120s\n"
	    "WatcherDebounce 0ms\n"
	    "Vault v\nPath \"/run/my vault\"\nMountSize 1048576\n"
	    "HistoryInterval 60m\nOwner a:b\n", &es);
	d = dump_str(&c);
	assert_non_null(strstr(d, "\nLogLevel warning\n"));
	assert_non_null(strstr(d, "\nHeadPollMaxInterval 2m\n"));
	assert_non_null(strstr(d, "\nWatcherDebounce 0s\n"));
	assert_non_null(strstr(d, "\nVault v\n\tPath \"/run/my vault\"\n"
	    "\tMount yes\n\tMountSize 1M\n\tOwner a:b\n"));
	assert_non_null(strstr(d, "\n\tHistoryInterval 1h\n"));
	assert_non_null(strstr(d, "\n\tHistoryKeep 30\n"));
	assert_null(strstr(d, "\nInclude"));
	assert_int_equal(d[0], '#');
	free(d);
	cfg_free(&c);
}

/* ---- Include ------------------------------------------------------------- */

static char tmpdir[64];

static void
write_file(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
mkdir_rel(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	assert_int_equal(mkdir(path, 0700), 0);
}

static int
load_rel(struct cfg *c, const char *rel, int explicit_file,
    const struct cfg_env *e, struct cfg_err *err)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	return cfg_load(c, path, explicit_file, e, err);
}

static int
setup_tmpdir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
expect_file_error(const char *rel, const char *errfile, int line,
    const char *substr)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char want[512];

	if (load_rel(&c, rel, 1, &e, &err) == 0) {
		cfg_free(&c);
		fail_msg("%s loaded, expected '%s'", rel, substr);
	}
	snprintf(want, sizeof(want), "%s/%s", tmpdir, errfile);
	if (strcmp(err.file, want) != 0 || err.line != line ||
	    strstr(err.msg, substr) == NULL)
		fail_msg("%s: want %s:%d '%s', got %s:%d: %s", rel, want, line,
		    substr, err.file, err.line, err.msg);
}

static void
test_include(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char path[512];

	(void)state;
	mkdir_rel("inc");
	mkdir_rel("inc/conf.d");
	write_file("inc/conf.d/20-b.conf", "Vault b\nPath /b\n");
	write_file("inc/conf.d/10-a.conf",
	    "# a\nVault a\nPath /a\nInterval 1m\n");
	write_file("inc/conf.d/30-c.conf.disabled", "Bogus\n");
	write_file("inc/conf.d/00-globals.conf", "DeviceId incl\n");
	write_file("inc/main.conf",
	    "Include conf.d/*.conf\n"
	    "# still global after the included Vault blocks:\n"
	    "LogLevel debug\n"
	    "Include empty-*.conf\n"
	    "Include /nonexistent-vaultsync-dir/*.conf\n"
	    "Vault z\nPath /z\n");
	assert_int_equal(load_rel(&c, "inc/main.conf", 1, &e, &err), 0);
	assert_int_equal(c.nvaults, 3);
	assert_string_equal(c.vaults[0].name, "a");
	assert_string_equal(c.vaults[1].name, "b");
	assert_string_equal(c.vaults[2].name, "z");
	assert_int_equal(c.vaults[0].line, 2);
	snprintf(path, sizeof(path), "%s/inc/conf.d/10-a.conf", tmpdir);
	assert_string_equal(c.vaults[0].file, path);
	snprintf(path, sizeof(path), "%s/inc/main.conf", tmpdir);
	assert_string_equal(c.file, path);
	assert_string_equal(c.vaults[2].file, path);
	assert_string_equal(c.device_id, "incl");
	assert_int_equal(c.log_level, CFG_LVL_DEBUG);
	assert_int_equal(c.vaults[0].interval_ms, 60000);
	assert_int_equal(c.vaults[1].interval_ms, 300000);
	cfg_free(&c);

	/* Absolute include of a single file. */
	snprintf(path, sizeof(path), "Include %s/inc/conf.d/20-b.conf\n",
	    tmpdir);
	write_file("abs.conf", path);
	assert_int_equal(load_rel(&c, "abs.conf", 1, &e, &err), 0);
	assert_int_equal(c.nvaults, 1);
	assert_string_equal(c.vaults[0].name, "b");
	cfg_free(&c);

	/* A literal path that does not exist is an error at the Include. */
	write_file("missing.conf", "# x\nInclude nope.conf\n" MINI);
	expect_file_error("missing.conf", "missing.conf", 2,
	    "No such file or directory");

	/* Errors inside an included file name that file and its line. */
	mkdir_rel("bad.d");
	write_file("bad.d/x.conf", "\n\nInterval 5\n");
	write_file("badinc.conf", "\nInclude bad.d/*.conf\n" MINI);
	expect_file_error("badinc.conf", "bad.d/x.conf", 3, "bad duration");

	/* A Vault block ends with its file: the includer is global again. */
	write_file("scope-a.conf", "Vault s\nPath /s\n");
	write_file("scope.conf", "Include scope-a.conf\nPath /t\n");
	expect_file_error("scope.conf", "scope.conf", 2,
	    "only allowed inside a Vault block");

	/* Duplicates across files name the earlier file. */
	write_file("dup-a.conf", "\nInterval 1m\n");
	write_file("dup.conf", "Include dup-a.conf\nInterval 2m\n" MINI);
	expect_file_error("dup.conf", "dup.conf", 2, "dup-a.conf:2");
	write_file("conf.d-dupv.conf", MINI);
	write_file("dupv2.conf", MINI "Include conf.d-dupv.conf\n");
	expect_file_error("dupv2.conf", "dupv2.conf", 3,
	    "Include is not allowed inside a Vault block");
	write_file("dupv3.conf", "Include conf.d-dupv.conf\n" MINI);
	expect_file_error("dupv3.conf", "dupv3.conf", 2,
	    "duplicate Vault v (first defined at");

	/* Include loops end at the depth limit. */
	write_file("loop.conf", "# loop\nInclude loop.conf\n");
	expect_file_error("loop.conf", "loop.conf", 2, "nested too deeply");
	write_file("ping.conf", "Include pong.conf\n");
	write_file("pong.conf", "\nInclude ping.conf\n");
	/* ping is at the even depths, so it holds the ninth Include. */
	expect_file_error("ping.conf", "ping.conf", 1, "nested too deeply");

	/* Exactly CFG_INCLUDE_DEPTH levels are fine. */
	write_file("d8.conf", MINI);
	write_file("d7.conf", "Include d8.conf\n");
	write_file("d6.conf", "Include d7.conf\n");
	write_file("d5.conf", "Include d6.conf\n");
	write_file("d4.conf", "Include d5.conf\n");
	write_file("d3.conf", "Include d4.conf\n");
	write_file("d2.conf", "Include d3.conf\n");
	write_file("d1.conf", "Include d2.conf\n");
	write_file("d0.conf", "Include d1.conf\n");
	assert_int_equal(load_rel(&c, "d0.conf", 1, &e, &err), 0);
	assert_int_equal(c.nvaults, 1);
	cfg_free(&c);
	write_file("d-1.conf", "Include d0.conf\n");
	expect_file_error("d-1.conf", "d7.conf", 1, "nested too deeply");

	/* Included files must be regular files. */
	mkdir_rel("dir.conf");
	write_file("incdir.conf", "Include dir.conf\n" MINI);
	expect_file_error("incdir.conf", "incdir.conf", 1,
	    "not a regular file");
	snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	write_file("incfifo.conf", "Include fifo.conf\n" MINI);
	expect_file_error("incfifo.conf", "incfifo.conf", 1,
	    "not a regular file");
	write_file("incglob.conf", "Include fifo.*\n" MINI);
	expect_file_error("incglob.conf", "incglob.conf", 1,
	    "not a regular file");
}

static void
test_load_file(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char path[512], *big;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
	assert_int_equal(cfg_load(&c, path, 1, &e, &err), -1);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 0);
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_non_null(strstr(err.msg, "No such file or directory"));

	/* Not explicit: a missing file is an empty configuration. */
	assert_int_equal(cfg_load(&c, path, 0, &e, &err), -1);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.msg, "no vaults configured");

	/* A directory is never a configuration file. */
	assert_int_equal(cfg_load(&c, tmpdir, 0, &e, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));

	write_file("ok.conf", "# ok\n" MINI);
	assert_int_equal(load_rel(&c, "ok.conf", 1, &e, &err), 0);
	assert_int_equal(c.nvaults, 1);
	assert_string_equal(c.vaults[0].path, "/v");
	cfg_free(&c);

	/* Over 1 MiB. */
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '\n', 1024 * 1024 + 1);
	assert_int_equal(fwrite(big, 1, 1024 * 1024 + 1, f), 1024 * 1024 + 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cfg_load(&c, path, 1, &e, &err), -1);
	assert_non_null(strstr(err.msg, "larger than 1 MiB"));
	assert_int_equal(cfg_load_buffer(&c, "x", big, 1024 * 1024 + 1, &e,
	    &err), -1);
	assert_non_null(strstr(err.msg, "larger than 1 MiB"));
	free(big);
}

/* ---- limits and hostile input ------------------------------------------ */

static void
test_limits(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	char *buf, *p;
	size_t i;
	char line[512];

	(void)state;
	buf = calloc(1, 64 * 1024);
	assert_non_null(buf);
	p = buf;
	for (i = 0; i < CFG_MAX_VAULTS; i++)
		p += sprintf(p, "Vault v%zu\nPath /v/%zu\n", i, i);
	must_load(&c, buf, &e);
	assert_int_equal(c.nvaults, CFG_MAX_VAULTS);
	assert_string_equal(c.vaults[CFG_MAX_VAULTS - 1].name, "v63");
	assert_non_null(cfg_vault_find(&c, "v42"));
	cfg_free(&c);
	strcpy(p, "Vault extra\nPath /x\n");
	assert_int_equal(load_env(&c, buf, &e, &err), -1);
	assert_int_equal(err.line, CFG_MAX_VAULTS * 2 + 1);
	assert_non_null(strstr(err.msg, "too many Vault blocks"));

	p = buf + sprintf(buf, MINI);
	for (i = 0; i < CFG_MAX_RECIPIENTS; i++) {
		char r[] = R2;

		r[10] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"[i];
		p += sprintf(p, "Recipient %s\n", r);
	}
	must_load(&c, buf, &e);
	assert_int_equal(c.vaults[0].nrecipients, CFG_MAX_RECIPIENTS);
	cfg_free(&c);
	strcpy(p, "Recipient " R1 "\n");
	assert_int_equal(load_env(&c, buf, &e, &err), -1);
	assert_int_equal(err.line, 3 + CFG_MAX_RECIPIENTS);
	assert_non_null(strstr(err.msg, "too many Recipient"));

	/* A path of CFG_PATH_MAX - 1 bytes fits; one more does not. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "Vault v\nPath /", 14);
	line[13 + CFG_PATH_MAX - 1] = '\n';
	line[13 + CFG_PATH_MAX] = '\0';
	must_load(&c, line, &e);
	assert_int_equal(strlen(c.vaults[0].path), CFG_PATH_MAX - 1);
	cfg_free(&c);
	memset(line, 'a', sizeof(line));
	memcpy(line, "Vault v\nPath /", 14);
	line[13 + CFG_PATH_MAX] = '\n';
	line[13 + CFG_PATH_MAX + 1] = '\0';
	must_fail(line, 2, "Path is too long");
	free(buf);
}

/* Truncation and bit-flip loops: every variant is an error or a result. */
static void
test_hostile(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c;
	struct cfg_err err;
	size_t len = strlen(all_keywords), i, ok = 0;
	char *copy = malloc(len);
	int bit;

	(void)state;
	assert_non_null(copy);
	for (i = 0; i <= len; i++) {
		memset(&err, 0, sizeof(err));
		if (cfg_load_buffer(&c, TNAME, all_keywords, i, &e, &err) == 0) {
			assert_true(c.nvaults > 0);
			ok++;
			cfg_free(&c);
		} else {
			assert_true(err.msg[0] != '\0');
			assert_true(err.line >= 0);
		}
	}
	/* Cut inside the last line still leaves two complete vaults. */
	assert_true(ok > 0);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, all_keywords, len);
			copy[i] ^= (char)(1 << bit);
			if (cfg_load_buffer(&c, TNAME, copy, len, &e, &err) == 0)
				cfg_free(&c);
			else
				assert_true(err.msg[0] != '\0');
		}
	}
	free(copy);
}

static void
test_vault_find_free(void **state)
{
	struct cfg c;

	(void)state;
	memset(&c, 0, sizeof(c));
	cfg_free(&c);
	cfg_free(&c);
	cfg_free(NULL);
	assert_null(cfg_vault_find(&c, "x"));
	assert_null(cfg_vault_find(NULL, "x"));
}

static void
test_default_file(void **state)
{
	struct cfg_env e = env_system();
	char buf[CFG_PATH_MAX], tiny[8];

	(void)state;
	cfg_default_file(&e, buf, sizeof(buf));
	assert_string_equal(buf, SYSCONFDIR "/vaultsync/vaultsyncd.conf");
	e = env_user();
	cfg_default_file(&e, buf, sizeof(buf));
	assert_string_equal(buf, "/home/u/.cfg/vaultsync/vaultsyncd.conf");
	e.xdg_config_home[0] = '\0';
	cfg_default_file(&e, buf, sizeof(buf));
	assert_string_equal(buf, "/home/u/.config/vaultsync/vaultsyncd.conf");
	cfg_default_file(&e, tiny, sizeof(tiny));
	assert_string_equal(tiny, "");
}

static void
test_env_from_process(void **state)
{
	struct cfg_env e;
	char hn[256];
	size_t i;

	(void)state;
	setenv("HOME", "/home/tester", 1);
	setenv("XDG_CONFIG_HOME", "/xc", 1);
	setenv("XDG_STATE_HOME", "relative/state", 1);
	unsetenv("XDG_RUNTIME_DIR");
	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x", 1);
	cfg_env_from_process(&e, CFG_USER);
	assert_int_equal(e.mode, CFG_USER);
	assert_string_equal(e.home, "/home/tester");
	assert_string_equal(e.xdg_config_home, "/xc");
	assert_string_equal(e.xdg_state_home, "");
	assert_string_equal(e.xdg_runtime_dir, "");
	assert_string_equal(e.credentials_directory, "/run/credentials/x");
	assert_int_equal(e.uid, getuid());
	assert_true(e.hostname[0] != '\0');
	assert_null(strchr(e.hostname, '.'));
	for (i = 0; e.hostname[i] != '\0'; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", e.hostname[i]));
	if (gethostname(hn, sizeof(hn)) == 0 && hn[0] != '\0' &&
	    strcspn(hn, ".") < CFG_NAME_MAX)
		assert_int_equal(strlen(e.hostname), strcspn(hn, "."));

	setenv("HOME", "", 1);
	cfg_env_from_process(&e, CFG_SYSTEM);
	assert_int_equal(e.mode, CFG_SYSTEM);
	/* Falls back to the passwd entry, which is absolute if present. */
	assert_true(e.home[0] == '\0' || e.home[0] == '/');
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
}

/* cfg_where: the line a later check (vaultsyncd -t, startup) names. */
static void
expect_where(const struct cfg *c, const struct cfg_vault *v, const char *kw,
    const char *file, int line)
{
	struct cfg_err at;

	cfg_where(c, v, kw, &at);
	if (strcmp(at.file, file) != 0 || at.line != line || at.msg[0] != '\0')
		fail_msg("%s (vault %s): want %s:%d, got %s:%d", kw,
		    v != NULL ? v->name : "-", file, line, at.file, at.line);
}

static void
test_where(void **state)
{
	struct cfg_env e = env_system();
	struct cfg c, moved;
	struct cfg_err err;
	char main_conf[512], inc[512];

	(void)state;
	mkdir_rel("where.d");
	write_file("where.d/v.conf", "\nVault b\n\tPath /b\n\tCredentialsFile /b.env\n"
	    "\tRemote s3://bucket-b\n");
	write_file("where.conf", "# globals\nPrivsepUser _vs\n"
	    "CredentialsFile /g.env\nInclude where.d/*.conf\n"
	    "Vault a\n\tPath /a\n\tRemote s3://bucket-a\n");
	assert_int_equal(load_rel(&c, "where.conf", 1, &e, &err), 0);
	snprintf(main_conf, sizeof(main_conf), "%s/where.conf", tmpdir);
	snprintf(inc, sizeof(inc), "%s/where.d/v.conf", tmpdir);
	assert_string_equal(c.vaults[0].name, "b");

	expect_where(&c, NULL, "PrivsepUser", main_conf, 2);
	expect_where(&c, NULL, "privsepuser", main_conf, 2);
	/* A default: the top-level file, no line. */
	expect_where(&c, NULL, "ControlGroup", main_conf, 0);
	/* A vault's own keyword, in an included file. */
	expect_where(&c, &c.vaults[0], "Path", inc, 3);
	expect_where(&c, &c.vaults[0], "CredentialsFile", inc, 4);
	/* Inherited: the global line.  A vault-only default: the Vault line. */
	expect_where(&c, &c.vaults[1], "CredentialsFile", main_conf, 3);
	expect_where(&c, &c.vaults[1], "Path", main_conf, 6);
	expect_where(&c, &c.vaults[1], "MountSize", main_conf, 5);
	expect_where(&c, &c.vaults[1], "Interval", main_conf, 0);
	/* Not a keyword: the file alone. */
	expect_where(&c, NULL, "Frobnicate", main_conf, 0);

	/* The origin moves with the struct (a reload's assignment). */
	moved = c;
	memset(&c, 0, sizeof(c));
	expect_where(&moved, &moved.vaults[0], "Path", inc, 3);
	cfg_free(&moved);
	assert_null(moved.origin);

	/* From a buffer: the name it was given. */
	must_load(&c, "\n" MINI, &e);
	expect_where(&c, &c.vaults[0], "Path", TNAME, 3);
	cfg_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_system),
		cmocka_unit_test(test_defaults_user_xdg),
		cmocka_unit_test(test_defaults_user_home),
		cmocka_unit_test(test_defaults_credentials_directory),
		cmocka_unit_test(test_defaults_bad_hostname),
		cmocka_unit_test(test_all_keywords),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_syntax_forms),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_semantic_errors),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_status_listen),
		cmocka_unit_test(test_remote),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_verify_interval),
		cmocka_unit_test(test_watcher_keyword),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_vault_find_free),
		cmocka_unit_test(test_default_file),
		cmocka_unit_test(test_env_from_process),
		cmocka_unit_test(test_where),
	};

	return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
