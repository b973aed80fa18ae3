/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The intent journal (store schema 7, table `intents`). A command that changes the TPM's
 * persistent state before its store transaction commits (key create --persist, nv define, key
 * rotate of a persistent key) first commits an intent row naming the handle it is about to
 * touch and the TPM name it expects there; the row is deleted in the transaction that commits
 * the store side. A command that commits the store first and changes the TPM afterwards (delete
 * of persistent objects) inserts the row in that transaction and deletes it once the TPM change
 * is durable. A row left behind is a command that was killed or failed half-way:
 * `citadel tpm repair` finds it and rolls it forward or back.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

typedef struct cit_intent {
    int64_t id;
    char op[32];        /* key.create, ak.create, key.rotate, nv.define, object.delete */
    int64_t object_id;  /* 0 when the object has no row (yet) */
    char path[256];
    uint32_t handle;    /* the persistent handle or NV index the command touches */
    uint8_t name[96];   /* the TPM name expected at handle once the step is done (keys) */
    size_t name_len;
    json_t *details;    /* op-specific (owned) */
    int64_t pid;
    int64_t created_at;
} cit_intent;

/* Records an intent. Inside an open transaction the row commits with it; otherwise it is
 * committed at once (synchronous=FULL: durable before the TPM changes). *id may be NULL. */
int cit__intent_add(cit_store *s, const char *op, const char *path, int64_t object_id, uint32_t handle,
                    const uint8_t *name, size_t name_len, const json_t *details, int64_t *id);
/* Deletes an intent (in the open transaction, or on its own). id 0 does nothing. */
int cit__intent_clear(cit_store *s, int64_t id);
/* Every intent, oldest first. *out malloc'd; free with cit__intent_list_free. */
int cit__intent_list(cit_store *s, cit_intent **out, size_t *n);
void cit__intent_list_free(cit_intent *l, size_t n);
/* Whether the process that wrote the intent may still be working on it (another live process,
 * and the intent is less than an hour old): repair leaves such intents alone. */
bool cit__intent_live(const cit_intent *in);

/* Fault injection for tests: when $CITADEL_FAULT_POINT equals name, the process kills itself
 * with SIGKILL here (as a crash or `kill -9` would at this point). */
void cit__fault_point(const char *name);
