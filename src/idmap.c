/* idmap.c — interning of ids to dense indexes.
 *
 * slots[] holds index + 1 (0 = empty) and is at most half full; hashes[] keeps
 * each key's hash so growing never rehashes a string. Keys live in arena
 * chunks that are never reallocated, so their addresses are stable. The
 * hash is keyed per process (see hash()), so slots differ between runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
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

/* SipHash-1-3 (as redis uses for its dicts) under a key drawn once per
 * process from getrandom(2). Ids come from scripts and from stores other
 * programs write, so an unkeyed hash lets anyone pick ids that all land in
 * one probe run: every lookup then walks them all, and n deposits cost n^2
 * (60,000 such ids took 40 s). Without the key nobody can aim at a slot. */
static uint64_t sip_k0, sip_k1;
static bool sip_keyed;

/* Last resort when the kernel gives no random bytes: the clock, the pid
 * and an address (ASLR), mixed; still differs per process. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool read_random(void *dst, size_t n)
{
	unsigned char *p = dst;
	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		p += got;
		n -= (size_t)got;
	}
	if (n == 0)
		return true;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (n > 0) {
		ssize_t got = read(fd, p, n);
		if (got <= 0) {
			if (got < 0 && errno == EINTR)
				continue;
			break;
		}
		p += got;
		n -= (size_t)got;
	}
	close(fd);
	return n == 0;
}

static void make_key(void)
{
	uint64_t k[2];
	if (!read_random(k, sizeof k)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k[0] = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
			     (uint64_t)getpid());
		k[1] = mix64(k[0] ^ (uint64_t)(uintptr_t)&ts);
	}
	sip_k0 = k[0];
	sip_k1 = k[1];
	sip_keyed = true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND							\
	do {								\
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;			\
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;			\
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

/* One compression round per 8 bytes, three to finish: ids are short, so
 * the finish is most of the cost (about 20 ns for a 10-byte id). */
static inline __attribute__((always_inline)) uint64_t
hash(const char *key, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ sip_k0;
	uint64_t v1 = 0x646f72616e646f6dull ^ sip_k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ sip_k0;
	uint64_t v3 = 0x7465646279746573ull ^ sip_k1;
	uint64_t last = (uint64_t)len << 56;
	for (; len >= 8; key += 8, len -= 8) {
		uint64_t m;
		memcpy(&m, key, 8);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	/* 0..7 bytes left, as one little-endian word with no loop: two
	 * overlapping loads cover 4..7 (the shared bytes are or-ed with
	 * themselves), three bytes cover 1..3 (wyhash's trick) */
	if (len >= 4) {
		uint32_t a, b;
		memcpy(&a, key, 4);
		memcpy(&b, key + len - 4, 4);
		last |= (uint64_t)a | (uint64_t)b << (8 * (len - 4));
	} else if (len > 0) {
		last |= (uint64_t)(unsigned char)key[0] |
			(uint64_t)(unsigned char)key[len >> 1] << (8 * (len >> 1)) |
			(uint64_t)(unsigned char)key[len - 1] << (8 * (len - 1));
	}
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
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
	if (!sip_keyed)
		make_key();
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
