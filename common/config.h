/*
 * vaultsyncd.conf: sshd_config-style keywords, Vault blocks, Include globs.
 * See DESIGN §10 and vaultsyncd.conf(5).  The parser is hostile-input code:
 * every error names file and line, nothing it reads can crash it.
 */
#ifndef VS_CONFIG_H
#define VS_CONFIG_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_NAME_MAX		64	/* vault names, users, groups (incl. NUL) */
#define CFG_PATH_MAX		256	/* paths (incl. NUL) */
#define CFG_URL_MAX		256
#define CFG_RECIPIENT_MAX	128
#define CFG_MAX_RECIPIENTS	16
#define CFG_MAX_VAULTS		64
#define CFG_INCLUDE_DEPTH	8

enum cfg_mode { CFG_SYSTEM = 0, CFG_USER = 1 };
enum cfg_log_format { CFG_LOG_JSON = 0, CFG_LOG_TEXT, CFG_LOG_PRETTY };
enum cfg_log_level { CFG_LVL_ERROR = 0, CFG_LVL_WARN, CFG_LVL_INFO, CFG_LVL_DEBUG };
enum cfg_remote_kind { CFG_REMOTE_NONE = 0, CFG_REMOTE_S3, CFG_REMOTE_DIR };

struct cfg_err {
	char file[CFG_PATH_MAX];
	int line;		/* 0 if the error is not tied to a line */
	char msg[512];
};

struct cfg_vault {
	char name[CFG_NAME_MAX];
	char file[CFG_PATH_MAX];	/* where the block starts */
	int line;

	char path[CFG_PATH_MAX];	/* absolute */
	int mount;			/* 0/1, default: yes as root, no in user mode */
	uint64_t mount_size;		/* bytes */
	char owner_user[CFG_NAME_MAX];	/* "" = default (root / the user) */
	char owner_group[CFG_NAME_MAX];
	char recipients[CFG_MAX_RECIPIENTS][CFG_RECIPIENT_MAX];
	size_t nrecipients;

	enum cfg_remote_kind remote_kind;
	char remote[CFG_URL_MAX];	/* as written, "" = none */
	char bucket[64];		/* s3 */
	char prefix[CFG_PATH_MAX];	/* s3: key prefix without leading or trailing '/' */
	char remote_dir[CFG_PATH_MAX];	/* dir: absolute path */
	char endpoint[CFG_URL_MAX];
	char region[64];
	int path_style;
	char credentials_file[CFG_PATH_MAX];	/* effective: vault, else global */

	uint64_t interval_ms;		/* effective: vault, else global */
	uint64_t history_interval_ms;	/* 0 = off */
	int history_keep;		/* < 1 never prunes */
	uint64_t verify_interval_ms;	/* effective: vault, else global; 0 = off */
	int watcher_polling;		/* Watcher polling: no inotify, the polling scan */
};

struct cfg_origin;

struct cfg {
	enum cfg_mode mode;
	char file[CFG_PATH_MAX];	/* the top-level file that was read ("" if none) */

	char runtime_dir[CFG_PATH_MAX];
	char state_dir[CFG_PATH_MAX];
	char control_socket[108];	/* sun_path limit */
	char control_group[CFG_NAME_MAX];
	char privsep_user[CFG_NAME_MAX];
	char privsep_chroot[CFG_PATH_MAX];
	char device_id[CFG_NAME_MAX];
	enum cfg_log_format log_format;
	enum cfg_log_level log_level;
	uint64_t interval_ms;
	uint64_t watcher_debounce_ms;
	uint64_t head_poll_interval_ms;
	uint64_t head_poll_max_interval_ms;
	int status_api;
	char status_listen[80];		/* as written, e.g. 127.0.0.1:0 or [::1]:8080 */
	int status_family;		/* AF_INET or AF_INET6 */
	uint8_t status_addr[16];	/* network order; 4 bytes used for AF_INET */
	uint16_t status_port;		/* host order, 0 = ephemeral */
	int status_require_auth;
	uint32_t status_tick_history;
	char credentials_file[CFG_PATH_MAX];
	uint64_t multipart_threshold;	/* bytes */
	uint64_t verify_interval_ms;	/* 0 = off */

	struct cfg_vault *vaults;
	size_t nvaults;
	struct cfg_origin *origin;	/* where each keyword was set: cfg_where() */
};

/*
 * Environment the defaults depend on.  Filled by cfg_env_from_process();
 * tests and fuzzers fill it by hand so that parsing is deterministic.
 */
struct cfg_env {
	enum cfg_mode mode;
	char home[CFG_PATH_MAX];		/* $HOME or the passwd entry */
	char xdg_config_home[CFG_PATH_MAX];	/* "" = unset */
	char xdg_state_home[CFG_PATH_MAX];
	char xdg_runtime_dir[CFG_PATH_MAX];
	char credentials_directory[CFG_PATH_MAX];	/* systemd's, "" = unset */
	char hostname[CFG_NAME_MAX];
	unsigned uid;
};

void cfg_env_from_process(struct cfg_env *env, enum cfg_mode mode);

/* The file read when -f is not given. */
void cfg_default_file(const struct cfg_env *env, char *buf, size_t len);

/*
 * Parse 'file' (explicit: it must exist; otherwise a missing file means
 * "built-in defaults only").  Returns 0, or -1 with *err filled in; on error
 * *c is left freed (cfg_free not needed).  The result has every default
 * applied and every per-vault effective value resolved.  A config with no
 * Vault blocks is an error ("no vaults configured").
 */
int cfg_load(struct cfg *c, const char *file, int explicit_file,
    const struct cfg_env *env, struct cfg_err *err);

/* Parse from memory, as if read from a file called 'name' (fuzzing, tests). */
int cfg_load_buffer(struct cfg *c, const char *name, const char *buf,
    size_t len, const struct cfg_env *env, struct cfg_err *err);

void cfg_free(struct cfg *c);

/* Print the effective configuration as a config file that re-parses to the same. */
int cfg_dump(const struct cfg *c, FILE *out);

const struct cfg_vault *cfg_vault_find(const struct cfg *c, const char *name);

/*
 * The system-mode owner of a vault as numbers: root, the Owner user with its
 * primary group, OwnerGroup's group if given.  0, or -1 with err naming the
 * user or group that does not exist.
 */
int cfg_vault_owner_ids(const struct cfg_vault *v, uid_t *uid, gid_t *gid,
    char *err, size_t errlen);

/*
 * Where 'keyword' took effect, in at->file and at->line (at->msg empty), so
 * that a problem the parser could not see still names the line to change.
 * v is the vault for a Vault-block keyword, NULL for a global one.  A
 * vault's keyword it inherits (CredentialsFile, Interval, VerifyInterval)
 * answers with the global line; a default answers with the Vault line, or
 * the top-level file and line 0.
 */
void cfg_where(const struct cfg *c, const struct cfg_vault *v,
    const char *keyword, struct cfg_err *at);

/* Value parsers, shared with vaultsyncctl and tests.  0 ok, -1 bad. */
int cfg_parse_duration(const char *s, uint64_t *ms);
int cfg_parse_size(const char *s, uint64_t *bytes);
void cfg_format_duration(uint64_t ms, char *buf, size_t len);
void cfg_format_size(uint64_t bytes, char *buf, size_t len);

#endif
