/*
 * A state directory removed under an unlocked vault (a cleaner, a mistaken
 * rm -r) used to stop every later save ("open .../recipient: No such file"),
 * and every change after it was lost.  The parent keeps what it needs to put
 * the directory back, and does so before the next save: the recipient and
 * the content-id key (so content ids, and with them the comparison with the
 * remote, stay as they were), identity.age (already encrypted with the
 * passphrase), the state and remote files (so the next push still carries
 * If-Match with our last ETag and is not mistaken for a first write), and the
 * unlocked marker that adoption relies on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vaultsyncd.h"

struct vault_keep {
	int have;
	char recipient[128];
	unsigned char key[32];
	unsigned char *identity;	/* identity.age: scrypt-encrypted, safe to hold */
	size_t identity_len;
};

/* What each vault's directory held when last written. */
struct keep_state {
	uint32_t gen;			/* vreg_state's */
	struct vault_keep k;
};
static struct keep_state keeps[CFG_MAX_VAULTS];
#define KS(v)	(&VREG_STATE(keeps, v)->k)

static void
keep_free(struct vault_keep *k)
{
	if (k->identity != NULL) {
		explicit_bzero(k->identity, k->identity_len);
		free(k->identity);
	}
	explicit_bzero(k, sizeof(*k));
}

/* After anything that (re)wrote the directory: remember it as it is now. */
void
keep_load(struct vault_rt *v, const char *dir)
{
	struct vault_keep k;
	char err[256], *buf;
	size_t len;

	memset(&k, 0, sizeof(k));
	if (store_read_small(dir, "recipient", sizeof(k.recipient) - 1, &buf, &len, err,
	    sizeof(err)) != 0)
		return;
	memcpy(k.recipient, buf, len);
	free(buf);
	if (store_key_load(dir, k.key, 0, err, sizeof(err)) != 0 ||
	    store_read_small(dir, "identity.age", 64 * 1024, &buf, &k.identity_len, err,
	    sizeof(err)) != 0) {
		keep_free(&k);
		return;
	}
	k.identity = (unsigned char *)buf;
	k.have = 1;
	keep_free(KS(v));
	*KS(v) = k;
}

int
keep_restore(struct vault_rt *v, const char *dir, char *err, size_t errlen)
{
	const struct vault_keep *k = KS(v);
	const struct vault_remote *rs;

	if (store_exists(dir, "recipient") && store_exists(dir, "key") &&
	    store_exists(dir, "identity.age"))
		return 0;
	if (!k->have) {
		snprintf(err, errlen, "%s/recipient is missing and the daemon holds no copy", dir);
		return -1;
	}
	log_warn("vault %s: the state directory %s lost its files; putting back what the "
	    "daemon holds (recipient, key, identity.age, state)", v->name, dir);
	if (store_mkdir(dir, err, errlen) != 0 ||
	    store_write_atomic(dir, "recipient", k->recipient, strlen(k->recipient), 0644, err,
	    errlen) != 0 ||
	    store_write_atomic(dir, "key", k->key, sizeof(k->key), 0600, err, errlen) != 0 ||
	    store_write_atomic(dir, "identity.age", k->identity, k->identity_len, 0600, err,
	    errlen) != 0)
		return -1;
	if (v->st.sha256[0] != '\0' && !store_exists(dir, "state") &&
	    store_state_write(dir, &v->st, err, errlen) != 0)
		return -1;
	if ((rs = remote_state_loaded(v)) != NULL && !store_exists(dir, "remote") &&
	    store_remote_write(dir, rs, err, errlen) != 0)
		return -1;
	if (v->state != VAULT_ST_LOCKED && !store_exists(dir, "unlocked") &&
	    store_write_atomic(dir, "unlocked", "1\n", 2, 0600, err, errlen) != 0)
		return -1;
	return 1;
}

/* The vault leaves the configuration: the copies it held go, wiped. */
void
keep_drop(struct vault_rt *v)
{
	keep_free(KS(v));
}
