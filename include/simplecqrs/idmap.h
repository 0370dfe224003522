/* idmap.h — interning of account ids: a string maps to a dense index.
 *
 * The first id interned gets 0, the next 1, and so on; callers keep their
 * per-id data in plain arrays indexed by it. Keys are copied once into an
 * arena and never move, so idmap_key() pointers stay valid until the map is
 * freed. Keys hold no NUL byte. Open addressing, linear probing, power-of-two
 * table kept at most half full. */
#ifndef SIMPLECQRS_IDMAP_H
#define SIMPLECQRS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDMAP_NONE UINT32_MAX

typedef struct idmap idmap;

idmap *idmap_new(void);
void idmap_free(idmap *m);

/* Index of key[0..len), or IDMAP_NONE. */
uint32_t idmap_find(const idmap *m, const char *key, size_t len);
/* Index of key[0..len), adding it if new (then *added is set, if given). */
uint32_t idmap_intern(idmap *m, const char *key, size_t len, bool *added);
/* Whether index holds key[0..len): a check of a remembered index that
 * costs one compare instead of a hash and a probe. Any index may be asked. */
bool idmap_is(const idmap *m, uint32_t index, const char *key, size_t len);
/* The NUL-terminated key of an index; owned by the map. */
const char *idmap_key(const idmap *m, uint32_t index);
uint32_t idmap_count(const idmap *m);

#endif
