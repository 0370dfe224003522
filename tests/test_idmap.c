/* test_idmap.c — the id table: interning, and that ids chosen to collide
 * cannot make it quadratic.
 *
 * The table's hash used to be unkeyed and every step of it inverts, so ids
 * that all share one hash were easy to make. This file makes such ids for
 * that old function (a copy of it is below) and checks that the table now
 * takes them in about the time it takes random ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "simplecqrs/idmap.h"
#include "simplecqrs/parse.h"
#include "unit.h"

START_TEST(interns_to_dense_indexes)
{
	idmap *m = idmap_new();
	bool added;
	ck_assert_uint_eq(idmap_intern(m, "XX1", 3, &added), 0);
	ck_assert(added);
	ck_assert_uint_eq(idmap_intern(m, "XX2", 3, &added), 1);
	ck_assert_uint_eq(idmap_intern(m, "XX1", 3, &added), 0);
	ck_assert(!added);
	ck_assert_uint_eq(idmap_find(m, "XX2", 3), 1);
	ck_assert_uint_eq(idmap_find(m, "XX", 2), IDMAP_NONE);
	ck_assert_str_eq(idmap_key(m, 1), "XX2");
	ck_assert(idmap_is(m, 0, "XX1", 3));
	ck_assert(!idmap_is(m, 0, "XX2", 3));
	ck_assert(!idmap_is(m, 7, "XX1", 3));
	ck_assert_uint_eq(idmap_count(m), 2);
	idmap_free(m);
}
END_TEST

/* Every length from 1 to 64 (each tail case of the hash) and many ids:
 * growing keeps every index findable. */
START_TEST(finds_every_key_after_growing)
{
	idmap *m = idmap_new();
	char key[80];
	uint32_t n = 0;
	for (size_t len = 1; len <= 64; len++) {
		for (int i = 0; i < 300; i++) {
			/* i's digits at both ends: short ids repeat, which
			 * interning must notice */
			for (size_t j = 0; j < len; j++)
				key[j] = (char)('a' + (int)(len + j) % 26);
			char digits[8];
			int nd = snprintf(digits, sizeof digits, "%d", i);
			for (int d = 0; d < nd && (size_t)d < len; d++) {
				key[d] = digits[d];
				key[len - 1 - (size_t)d] = digits[nd - 1 - d];
			}
			bool added;
			uint32_t idx = idmap_intern(m, key, len, &added);
			if (added)
				ck_assert_uint_eq(idx, n++);
			ck_assert_uint_eq(idmap_find(m, key, len), idx);
		}
	}
	ck_assert_uint_eq(idmap_count(m), n);
	for (uint32_t i = 0; i < n; i++) {
		const char *k = idmap_key(m, i);
		ck_assert_uint_eq(idmap_find(m, k, strlen(k)), i);
	}
	idmap_free(m);
}
END_TEST

/* ---- ids that collide under the old, unkeyed hash ---- */

#define OLD_M1 0xbf58476d1ce4e5b9ull

static uint64_t old_step(uint64_t x)
{
	x *= OLD_M1;
	return x ^ x >> 31;
}

/* The hash idmap.c had: each step a multiply by an odd number and an
 * xorshift, both of which invert. */
static uint64_t old_hash(const char *key, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	for (; len >= 8; key += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, key, 8);
		h = old_step(h ^ w);
	}
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

static uint64_t inverse(uint64_t m)	/* of an odd m, mod 2^64 (Newton) */
{
	uint64_t x = m;
	for (int i = 0; i < 5; i++)
		x *= 2 - m * x;
	return x;
}

static uint64_t old_step_inv(uint64_t y)
{
	y ^= y >> 31 ^ y >> 62;
	return y * inverse(OLD_M1);
}

/* The top two bits of each byte, as 16 bits: a letter's are 01. */
static unsigned top_bits(uint64_t x)
{
	unsigned c = 0;
	for (int i = 0; i < 8; i++)
		c |= (unsigned)(x >> (8 * i + 6) & 3) << (2 * i);
	return c;
}

static const char letters[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void letters_of(uint64_t n, char *dst, size_t len)
{
	for (size_t i = 0; i < len; i++, n /= 52)
		dst[i] = letters[n % 52];
}

#define ID_LEN 23	/* two words, then a 7-byte tail */
#define TAILS 65536

/* n distinct ids of ID_LEN letters with one and the same old_hash, into
 * ids (n * (ID_LEN + 1) bytes, each NUL-terminated).
 *
 * For ID_LEN the old hash is fin(step(step(s ^ w1) ^ w2) ^ tail), fin a
 * bijection, so the ids collide when step(h1 ^ w2) ^ tail is one constant
 * X, that is when w2 = step_inv(X ^ tail) ^ h1 with h1 = step(s ^ w1).
 * w1 and the tail are any letters; w2 must be letters too. Meeting in the
 * middle: the tails are sorted by the top bits of step_inv(X ^ tail), so
 * for each w1 the ones that give w2 a letter's top bits in every byte are
 * looked up, not searched for. */
static void colliding_ids(char *ids, size_t n)
{
	const uint64_t X = 0x0123456789abcdefull;
	uint64_t *y = malloc(TAILS * sizeof *y);
	uint32_t *order = malloc(TAILS * sizeof *order);
	uint32_t *start = calloc(65536 + 1, sizeof *start);
	char (*tails)[8] = malloc(TAILS * sizeof *tails);
	ck_assert(y && order && start && tails);
	for (uint32_t t = 0; t < TAILS; t++) {
		letters_of(t * 7919u + 13, tails[t], 7);
		uint32_t a, b;
		memcpy(&a, tails[t], 4);
		memcpy(&b, tails[t] + 3, 4);
		y[t] = old_step_inv(X ^ ((uint64_t)a << 32 | b));
		start[top_bits(y[t]) + 1]++;
	}
	for (uint32_t c = 0; c < 65536; c++)
		start[c + 1] += start[c];
	uint32_t *fill = malloc(65536 * sizeof *fill);
	ck_assert(fill);
	memcpy(fill, start, 65536 * sizeof *fill);
	for (uint32_t t = 0; t < TAILS; t++)
		order[fill[top_bits(y[t])]++] = t;
	free(fill);

	const uint64_t s = 0x9e3779b97f4a7c15ull ^ ID_LEN;
	size_t made = 0;
	for (uint64_t i = 0; made < n; i++) {
		char id[ID_LEN + 1];
		uint64_t w1, w2;
		letters_of(i, id, 8);
		memcpy(&w1, id, 8);
		uint64_t h1 = old_step(s ^ w1);
		unsigned want = top_bits(h1) ^ 0x5555;	/* w2's bytes 0x40..0x7f */
		for (uint32_t k = start[want]; k < start[want + 1] && made < n; k++) {
			uint32_t t = order[k];
			w2 = y[t] ^ h1;
			bool ok = true;
			for (int b = 0; b < 8 && ok; b++) {
				unsigned low = (unsigned)(w2 >> (8 * b)) & 31;
				ok = low >= 1 && low <= 26;	/* A-Z or a-z */
			}
			if (!ok)
				continue;
			memcpy(id + 8, &w2, 8);
			memcpy(id + 16, tails[t], 7);
			id[ID_LEN] = '\0';
			memcpy(ids + made++ * (ID_LEN + 1), id, ID_LEN + 1);
		}
	}
	free(y);
	free(order);
	free(start);
	free(tails);
}

static void random_ids(char *ids, size_t n)
{
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (size_t i = 0; i < n; i++) {
		char *id = ids + i * (ID_LEN + 1);
		for (size_t j = 0; j < ID_LEN; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			id[j] = letters[x % 52];
		}
		id[ID_LEN] = '\0';
	}
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The least time of a few runs that intern the first n ids and find each. */
static double time_ids(const char *ids, size_t n)
{
	double best = 1e9;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = cpu_seconds();
		idmap *m = idmap_new();
		for (size_t i = 0; i < n; i++)
			idmap_intern(m, ids + i * (ID_LEN + 1), ID_LEN, NULL);
		for (size_t i = 0; i < n; i++)
			ck_assert_uint_eq(idmap_find(m, ids + i * (ID_LEN + 1), ID_LEN), i);
		idmap_free(m);
		double t = cpu_seconds() - t0;
		if (t < best)
			best = t;
	}
	return best > 1e-7 ? best : 1e-7;
}

#define N 2000

START_TEST(colliding_ids_stay_linear)
{
	char *coll = malloc(4 * N * (ID_LEN + 1));
	char *rand = malloc(4 * N * (ID_LEN + 1));
	ck_assert(coll && rand);
	colliding_ids(coll, 4 * N);
	random_ids(rand, 4 * N);
	/* the ids are what they claim: valid, distinct, one old hash */
	uint64_t h = old_hash(coll, ID_LEN);
	idmap *seen = idmap_new();
	for (size_t i = 0; i < 4 * N; i++) {
		const char *id = coll + i * (ID_LEN + 1);
		ck_assert_msg(parse_account(id), "%s", id);
		ck_assert_msg(old_hash(id, ID_LEN) == h, "%s", id);
		bool added;
		idmap_intern(seen, id, ID_LEN, &added);
		ck_assert_msg(added, "%s twice", id);
	}
	idmap_free(seen);

	double c1 = time_ids(coll, N), c4 = time_ids(coll, 4 * N);
	double r1 = time_ids(rand, N), r4 = time_ids(rand, 4 * N);
	fprintf(stderr, "colliding: %d ids %.6f s, %d ids %.6f s (x%.1f); "
		"random: %.6f s, %.6f s (x%.1f)\n", N, c1, 4 * N, c4, c4 / c1,
		r1, r4, r4 / r1);
	/* Linear: 4 times the ids take about 4 times as long, for colliding
	 * ids as for random ones; quadratic would be 16 times, and the
	 * colliding ids hundreds of times slower than random ones. */
	ck_assert_msg(c4 < 8 * r4, "colliding ids %.1f times slower than random",
		      c4 / r4);
	ck_assert_msg(c4 / c1 < 2.5 * (r4 / r1),
		      "colliding ids grow x%.1f for 4x the ids, random x%.1f",
		      c4 / c1, r4 / r1);
	free(coll);
	free(rand);
}
END_TEST

static Suite *idmap_suite(void)
{
	Suite *su = suite_create("idmap");
	TCase *t = tcase_create("map");
	tcase_add_test(t, interns_to_dense_indexes);
	tcase_add_test(t, finds_every_key_after_growing);
	suite_add_tcase(su, t);
	t = tcase_create("collisions");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, colliding_ids_stay_linear);
	suite_add_tcase(su, t);
	return su;
}

UNIT_MAIN(idmap_suite)
