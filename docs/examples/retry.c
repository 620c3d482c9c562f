/* SPDX-License-Identifier: MIT */
/* Conflicts and a complete retry loop. Accounts are an int64 array; a transfer reads two
 * balances and writes them back. When another session commits a change to the same
 * block first, our commit fails with BA_ECONFLICT, writing nothing: we abort (which
 * moves the session to the newest snapshot) and run the whole transaction again, reads
 * included. Here the rival is a second session of this process, committing while our
 * first attempt is in flight; in real life it is another thread or process. */
#include <bigarray.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ATTEMPTS   10 /* conflicts in a row before giving up */
#define MAX_BUSY_WAITS 3  /* BA_EBUSY: another process held the write lock too long */

static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%s: %s: %s\n", what, ba_strerror(rc), ba_errmsg());
        exit(1);
    }
}

/* The body of the transaction: any reads and writes through views of the session. */
static int transfer_body(ba_session *s, int64_t from, int64_t to, int64_t amount)
{
    ba_array *a;
    int rc = ba_array_open(s, "accounts", &a);
    if (rc)
        return rc;
    ba_view v;
    rc = ba_array_view(a, NULL, 0, 0, &v); /* the whole array */
    if (!rc) {
        int64_t *balance = v.data;
        balance[from] -= amount;
        balance[to] += amount;
        ba_view_release(&v);
    }
    ba_array_close(a);
    return rc;
}

static void rival_transfer(ba_db *db)
{
    ba_session *r;
    check(ba_session_begin(db, &r), "rival begin");
    check(transfer_body(r, 1, 0, 10), "rival transfer");
    check(ba_session_commit(r), "rival commit");
    ba_session_end(r);
}

/* Run the transfer as one transaction, retrying on conflicts. Returns 0, or the code of
 * the failure that ended it after dropping the changes. */
static int transfer(ba_session *s, int64_t from, int64_t to, int64_t amount, ba_db *rival_db)
{
    int rc = 0;
    for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        rc = transfer_body(s, from, to, amount);
        if (rc)
            break;
        if (rival_db && attempt == 1)
            rival_transfer(rival_db); /* for the demonstration only */
        rc = ba_session_commit(s);
        /* BA_EBUSY, BA_EFULL, -ENOSPC, -EIO: nothing was written and the changes are
         * kept, so the commit itself may be tried again (here: only BA_EBUSY). */
        for (int w = 0; rc == BA_EBUSY && w < MAX_BUSY_WAITS; w++)
            rc = ba_session_commit(s);
        if (rc != BA_ECONFLICT)
            break; /* 0: done; anything else: give up below */
        printf("attempt %d: conflict: %s\n", attempt, ba_errmsg());
        rc = ba_session_abort(s); /* drop our changes, move to the newest snapshot */
        if (rc)
            break;
    }
    if (rc)
        (void)ba_session_abort(s); /* give up: drop the changes; rc says why */
    return rc;
}

int main(void)
{
    ba_db_options opts;
    ba_db_options_init(&opts);
    opts.flags = BA_DB_CREATE;
    ba_db *db;
    check(ba_db_open("bank.db", &opts, &db), "open");
    ba_session *s;
    check(ba_session_begin(db, &s), "begin");
    ba_array_spec spec;
    ba_array_spec_init(&spec);
    check(ba_dtype_parse("i8", &spec.dtype), "dtype");
    spec.ndim = 1;
    spec.shape[0] = 4;
    ba_array *a;
    check(ba_array_create(s, "accounts", &spec, &a), "create");
    ba_view v;
    check(ba_array_view(a, NULL, 0, 0, &v), "view");
    int64_t *balance = v.data;
    for (int i = 0; i < 4; i++)
        balance[i] = 100;
    check(ba_session_commit(s), "commit");

    /* Move 30 from account 0 to account 2 while a rival moves 10 from 1 to 0. */
    check(transfer(s, 0, 2, 30, db), "transfer");
    printf("balances: %lld %lld %lld %lld (snapshot %llu)\n", (long long)balance[0],
           (long long)balance[1], (long long)balance[2], (long long)balance[3],
           (unsigned long long)ba_session_snapshot(s));
    int ok = balance[0] == 80 && balance[1] == 90 && balance[2] == 130 && balance[3] == 100;

    ba_view_release(&v);
    ba_array_close(a);
    ba_session_end(s);
    ba_db_close(db);
    return ok ? 0 : 1;
}
