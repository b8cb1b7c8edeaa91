/*
 * The vault registry (see vreg.h).  The slots are a fixed array, so a
 * struct vault_rt never moves; a slot's generation grows each time a vault
 * takes it, so a reference to the vault that held it before no longer
 * resolves.
 */
#include <string.h>

#include "log.h"
#include "vaultsyncd.h"
#include "vreg.h"

static struct vault_rt slots[CFG_MAX_VAULTS];
static uint32_t gens[CFG_MAX_VAULTS];
static size_t count;

struct vault_rt *
vreg_find(const char *name)
{
	size_t i;

	for (i = 0; i < CFG_MAX_VAULTS; i++)
		if (slots[i].in_use && strcmp(slots[i].name, name) == 0)
			return &slots[i];
	return NULL;
}

struct vault_ref
vreg_ref(const struct vault_rt *v)
{
	struct vault_ref r = { 0, 0 };

	if (v != NULL && v->in_use) {
		r.slot = (uint32_t)(v - slots);
		r.gen = gens[r.slot];
	}
	return r;
}

struct vault_rt *
vreg_get(struct vault_ref r)
{
	if (r.gen == 0 || r.slot >= CFG_MAX_VAULTS || !slots[r.slot].in_use ||
	    gens[r.slot] != r.gen)
		return NULL;
	return &slots[r.slot];
}

struct vault_rt *
vreg_next(const struct vault_rt *v)
{
	size_t i = v == NULL ? 0 : (size_t)(v - slots) + 1;

	for (; i < CFG_MAX_VAULTS; i++)
		if (slots[i].in_use)
			return &slots[i];
	return NULL;
}

size_t
vreg_count(void)
{
	return count;
}

void *
vreg_state(void *arr, size_t elem_size, const struct vault_rt *v)
{
	struct vault_ref r = vreg_ref(v);
	char *p;
	uint32_t gen;

	if (r.gen == 0)
		fatalx("module state asked for a vault not in the registry");
	p = (char *)arr + (size_t)r.slot * elem_size;
	memcpy(&gen, p, sizeof(gen));
	if (gen != r.gen) {
		memset(p, 0, elem_size);
		memcpy(p, &r.gen, sizeof(r.gen));
	}
	return p;
}

void
vreg_sync(void (*drop)(struct vault_rt *v))
{
	size_t i, j;

	for (i = 0; i < CFG_MAX_VAULTS; i++)
		if (slots[i].in_use && cfg_vault_find(&D.cfg, slots[i].name) == NULL) {
			drop(&slots[i]);
			memset(&slots[i], 0, sizeof(slots[i]));
			count--;
		}
	for (i = 0; i < D.cfg.nvaults; i++) {
		if (vreg_find(D.cfg.vaults[i].name) != NULL)
			continue;
		for (j = 0; j < CFG_MAX_VAULTS && slots[j].in_use; j++)
			;
		if (j == CFG_MAX_VAULTS)
			fatalx("more than %d vaults", CFG_MAX_VAULTS);
		memset(&slots[j], 0, sizeof(slots[j]));
		msg_strlcpy(slots[j].name, D.cfg.vaults[i].name, sizeof(slots[j].name));
		slots[j].state = VAULT_ST_LOCKED;
		slots[j].in_use = 1;
		gens[j]++;
		count++;
	}
}
