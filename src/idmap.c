/* idmap.c — interning of ids to dense indexes.
 *
 * slots[] holds index + 1 (0 = empty) and is at most half full; hashes[] keeps
 * each key's hash so growing never rehashes a string. Keys live in arena
 * chunks that are never reallocated, so their addresses are stable. */
#include <stdlib.h>
#include <string.h>
#include "simplecqrs/idmap.h"
#include "simplecqrs/xmalloc.h"

#define CHUNK_SIZE (64 * 1024)

typedef struct chunk {
	struct chunk *next;
	size_t used;
	char data[];
} chunk;

struct idmap {
	uint32_t *slots;
	size_t mask;		/* table size - 1 */
	char **keys;		/* by index */
	uint64_t *hashes;	/* by index */
	uint32_t *lens;		/* by index: compared before any byte */
	uint32_t count;
	uint32_t cap;		/* of keys and hashes */
	chunk *arena;
};

/* Eight bytes a step, each folded in with a multiply, then a final mix
 * (splitmix64's): ids are short, so this is a handful of instructions. */
static inline __attribute__((always_inline)) uint64_t
hash(const char *key, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	for (; len >= 8; key += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, key, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	/* 0..7 bytes left: two overlapping loads cover 4..7, three bytes
	 * cover 1..3 (wyhash's trick), with no loop */
	uint64_t tail = 0;
	if (len >= 4) {
		uint32_t a, b;
		memcpy(&a, key, 4);
		memcpy(&b, key + len - 4, 4);
		tail = (uint64_t)a << 32 | b;
	} else if (len > 0) {
		tail = (uint64_t)(unsigned char)key[0] << 16 |
		       (uint64_t)(unsigned char)key[len >> 1] << 8 |
		       (unsigned char)key[len - 1];
	}
	h = (h ^ tail) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h;
}

/* key[0..len) equals k, which is len bytes long too. Ids are short: whole
 * words and two overlapping loads beat a call to memcmp. */
static bool same(const char *k, const char *key, size_t len)
{
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t a, b;
		memcpy(&a, k + i, 8);
		memcpy(&b, key + i, 8);
		if (a != b)
			return false;
	}
	if (len - i >= 4) {
		uint32_t a, b, c, d;
		memcpy(&a, k + i, 4);
		memcpy(&b, key + i, 4);
		memcpy(&c, k + len - 4, 4);
		memcpy(&d, key + len - 4, 4);
		if (a != b || c != d)
			return false;
	} else {
		for (; i < len; i++)
			if (k[i] != key[i])
				return false;
	}
	return true;
}

idmap *idmap_new(void)
{
	idmap *m = xcalloc(1, sizeof *m);
	m->mask = 15;
	m->slots = xcalloc(m->mask + 1, sizeof *m->slots);
	return m;
}

void idmap_free(idmap *m)
{
	if (m == NULL)
		return;
	for (chunk *c = m->arena, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(m->slots);
	free(m->keys);
	free(m->hashes);
	free(m->lens);
	free(m);
}

static char *arena_copy(idmap *m, const char *key, size_t len)
{
	size_t need = len + 1;
	if (m->arena == NULL || CHUNK_SIZE - m->arena->used < need) {
		size_t size = need > CHUNK_SIZE ? need : CHUNK_SIZE;
		chunk *c = xmalloc(sizeof *c + size);
		c->next = m->arena;
		c->used = 0;
		m->arena = c;
	}
	char *p = m->arena->data + m->arena->used;
	memcpy(p, key, len);
	p[len] = '\0';
	m->arena->used += need;
	return p;
}

/* hash and probe are forced inline: every command looks an id up two or
 * three times, and as calls they cost about a tenth of a lookup. */
static inline __attribute__((always_inline)) size_t
probe(const idmap *m, uint64_t h, const char *key, size_t len)
{
	size_t i = (size_t)h & m->mask;
	for (;;) {
		uint32_t s = m->slots[i];
		if (s == 0)
			return i;
		if (m->hashes[s - 1] == h && m->lens[s - 1] == len &&
		    same(m->keys[s - 1], key, len))
			return i;
		i = (i + 1) & m->mask;
	}
}

static void grow(idmap *m)
{
	size_t size = (m->mask + 1) * 2;
	uint32_t *slots = xcalloc(size, sizeof *slots);
	for (uint32_t idx = 0; idx < m->count; idx++) {
		size_t i = (size_t)m->hashes[idx] & (size - 1);
		while (slots[i])
			i = (i + 1) & (size - 1);
		slots[i] = idx + 1;
	}
	free(m->slots);
	m->slots = slots;
	m->mask = size - 1;
}

uint32_t idmap_find(const idmap *m, const char *key, size_t len)
{
	uint32_t s = m->slots[probe(m, hash(key, len), key, len)];
	return s ? s - 1 : IDMAP_NONE;
}

uint32_t idmap_intern(idmap *m, const char *key, size_t len, bool *added)
{
	uint64_t h = hash(key, len);
	size_t i = probe(m, h, key, len);
	if (m->slots[i]) {
		if (added)
			*added = false;
		return m->slots[i] - 1;
	}
	if (m->count == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->keys = xreallocarray(m->keys, m->cap, sizeof *m->keys);
		m->hashes = xreallocarray(m->hashes, m->cap, sizeof *m->hashes);
		m->lens = xreallocarray(m->lens, m->cap, sizeof *m->lens);
	}
	uint32_t idx = m->count++;
	m->keys[idx] = arena_copy(m, key, len);
	m->hashes[idx] = h;
	m->lens[idx] = (uint32_t)len;
	m->slots[i] = idx + 1;
	if ((size_t)m->count * 2 > m->mask + 1)	/* at most half full */
		grow(m);
	if (added)
		*added = true;
	return idx;
}

bool idmap_is(const idmap *m, uint32_t index, const char *key, size_t len)
{
	return index < m->count && m->lens[index] == len &&
	       same(m->keys[index], key, len);
}

const char *idmap_key(const idmap *m, uint32_t index)
{
	return index < m->count ? m->keys[index] : NULL;
}

uint32_t idmap_count(const idmap *m)
{
	return m->count;
}
