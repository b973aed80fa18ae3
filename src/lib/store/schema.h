/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* Migration i (0-based) takes the schema from version i to i+1. */
extern const char *const cit__store_migrations[];
extern const int cit__store_n_migrations;
