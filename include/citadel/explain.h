/* SPDX-License-Identifier: Apache-2.0 */
/* Operator-oriented explanations for `citadel tpm explain <topic>`. */
#pragma once
#include <stddef.h>

typedef struct cit_topic {
    const char *name;     /* "pcr" */
    const char *title;    /* one line */
    const char *text;     /* several paragraphs, wrapped at 80 columns, ends with '\n' */
    const char *see_also; /* space-separated topic names or commands, may be NULL */
} cit_topic;

/* NULL when unknown. Names are matched case-insensitively; "da" aliases "dictionary-attack". */
const cit_topic *cit_topic_lookup(const char *name);
const cit_topic *cit_topic_table(size_t *n);
