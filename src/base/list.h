/* An intrusive doubly linked list (the node lives inside the element): the
 * LRU orders of the in-memory cache and rate limiter (head = most recently
 * used, tail = next to evict) and the event bus's groups and subscriptions.
 * Zero-initialise a list; no allocation; not thread-safe. */
#ifndef DK_UTIL_LIST_H
#define DK_UTIL_LIST_H

#include <stddef.h>

typedef struct dk__lnode {
    struct dk__lnode *prev, *next;
} dk__lnode;

typedef struct dk__list {
    dk__lnode *head, *tail;
} dk__list;

/* The element holding node `ptr` as its member `member`. */
#define DK__CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void dk__list_unlink(dk__list *l, dk__lnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
}

static inline void dk__list_push_front(dk__list *l, dk__lnode *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    if (l->tail == NULL)
        l->tail = n;
}

static inline void dk__list_push_back(dk__list *l, dk__lnode *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    l->tail = n;
    if (l->head == NULL)
        l->head = n;
}

#endif
