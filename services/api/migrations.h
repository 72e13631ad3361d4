/* The database schema: versioned SQL migrations compiled into the binary and
 * applied on every new connection before it serves queries, in one
 * transaction under a transaction-scoped advisory lock. Replicas starting
 * together queue on the lock; the first applies what is missing, the others
 * then find nothing to do. A migration is never edited once released: a
 * change is a new, higher version. */
#ifndef SLUICE_API_MIGRATIONS_H
#define SLUICE_API_MIGRATIONS_H

#include <stddef.h>

struct db_conn;

struct migration {
    int version;          /* 1, 2, ... in order */
    const char *name;
    const char *sql;      /* statements, no parameters */
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* The setup hook for db_options.setup (<arg> is unused). */
void migrations_setup(struct db_conn *c, void *arg);

#endif
