/*
 * The vault registry: one fixed slot per configured vault, for the daemon's
 * lifetime.  A reload keeps the slot (and every pointer to it) of each vault
 * it keeps, clears the slots of the vaults it removes and fills free ones
 * with the vaults it adds.  Whatever outlives a callback (timers, jobs,
 * uploader requests, watches) holds a vault_ref and asks vreg_get, which
 * answers NULL once that vault has gone, even if its name came back.
 */
#ifndef VS_VREG_H
#define VS_VREG_H

#include <stddef.h>
#include <stdint.h>

struct vault_rt;

struct vault_ref {
	uint32_t slot;
	uint32_t gen;		/* 0: no vault */
};

struct vault_rt *vreg_find(const char *name);
struct vault_ref vreg_ref(const struct vault_rt *v);
struct vault_rt *vreg_get(struct vault_ref r);
/* The vault after v in slot order (NULL: the first); NULL at the end. */
struct vault_rt *vreg_next(const struct vault_rt *v);
size_t vreg_count(void);

/*
 * Each module keeps its own per-vault state in an array of CFG_MAX_VAULTS
 * structs (static in the module, so nothing else reaches it) whose first
 * member is `uint32_t gen`.  VREG_STATE(arr, v) is v's element, zeroed the
 * first time a vault newly in that slot asks: a vault removed and another
 * added in its slot never sees its predecessor's state.
 */
void *vreg_state(void *arr, size_t elem_size, const struct vault_rt *v);
#define VREG_STATE(arr, v) \
	((__typeof__(&(arr)[0]))vreg_state((arr), sizeof((arr)[0]), (v)))

#define VAULT_FOREACH(v)	for ((v) = vreg_next(NULL); (v) != NULL; (v) = vreg_next(v))

/*
 * After the configuration was (re)loaded: each vault it no longer names is
 * handed to drop, then its slot is cleared; each new one gets a slot, locked.
 * The configuration holds at most CFG_MAX_VAULTS vaults, so a slot is free.
 */
void vreg_sync(void (*drop)(struct vault_rt *v));

#endif
