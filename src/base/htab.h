/* An intrusive chained hash table: the node (chain link and full hash) lives
 * inside the element, which the table never allocates or frees. Buckets are a
 * power of two; dk__htab_add() doubles them when the table holds as many
 * nodes as buckets (best effort: if that allocation fails the chains get
 * longer and lookups stay correct). The one hash table behind the in-memory
 * cache, the rate limiter's windows and the SSE registry; hash keys with
 * dk__hash(). Not thread-safe: the owner locks. */
#ifndef DK_BASE_HTAB_H
#define DK_BASE_HTAB_H

#include "donkey/common.h"
#include "base/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct dk__hnode {
    struct dk__hnode *next; /* chain */
    uint64_t hash;
} dk__hnode;

typedef struct dk__htab {
    dk__hnode **buckets;
    size_t mask;  /* buckets - 1 */
    size_t count; /* nodes in the table */
} dk__htab;

/** `nbuckets` is a power of two. 0 or DK_ENOMEM. */
static inline int dk__htab_init(dk__htab *t, size_t nbuckets)
{
    t->buckets = dk__calloc(nbuckets, sizeof(*t->buckets));
    t->mask = nbuckets - 1;
    t->count = 0;
    return t->buckets != NULL ? 0 : DK_ENOMEM;
}

/** Frees the buckets (not the elements). */
static inline void dk__htab_free(dk__htab *t)
{
    dk__free(t->buckets);
    t->buckets = NULL;
    t->count = 0;
}

static inline size_t dk__htab_nbuckets(const dk__htab *t) { return t->mask + 1; }

/** The slot holding the first node of bucket `i`; walk with `&(*slot)->next`. */
static inline dk__hnode **dk__htab_bucket(const dk__htab *t, size_t i) { return &t->buckets[i]; }

/** The slot holding the first node of the chain `hash` belongs to. */
static inline dk__hnode **dk__htab_chain(const dk__htab *t, uint64_t hash)
{
    return &t->buckets[hash & t->mask];
}

/** Doubles the buckets; false (nothing changed) when out of memory. */
static inline bool dk__htab_grow(dk__htab *t)
{
    size_t n = (t->mask + 1) * 2;
    dk__hnode **b = dk__calloc(n, sizeof(*b));
    if (b == NULL)
        return false;
    for (size_t i = 0; i <= t->mask; i++) {
        dk__hnode *e = t->buckets[i];
        while (e != NULL) {
            dk__hnode *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    dk__free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
    return true;
}

/** Adds `n` under `hash` (no duplicate check: look it up first). Returns
 *  true when the buckets were doubled first (bucket positions changed). */
static inline bool dk__htab_add(dk__htab *t, dk__hnode *n, uint64_t hash)
{
    bool grown = t->count >= t->mask + 1 && dk__htab_grow(t);
    n->hash = hash;
    dk__hnode **head = dk__htab_chain(t, hash);
    n->next = *head;
    *head = n;
    t->count++;
    return grown;
}

/** Removes the node `*slot` points at (a slot reached by walking a chain). */
static inline void dk__htab_unlink(dk__htab *t, dk__hnode **slot)
{
    dk__hnode *n = *slot;
    *slot = n->next;
    n->next = NULL;
    t->count--;
}

/** Removes `n`, which is in the table. */
static inline void dk__htab_remove(dk__htab *t, dk__hnode *n)
{
    dk__hnode **pp = dk__htab_chain(t, n->hash);
    while (*pp != n)
        pp = &(*pp)->next;
    dk__htab_unlink(t, pp);
}

/** Forgets every node (the elements are the caller's). */
static inline void dk__htab_clear(dk__htab *t)
{
    memset(t->buckets, 0, (t->mask + 1) * sizeof(*t->buckets));
    t->count = 0;
}

#endif
