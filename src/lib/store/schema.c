/* SPDX-License-Identifier: Apache-2.0 */
/* Numbered schema migrations. APPEND ONLY: a released migration never changes. */
#include "schema.h"

const char *const cit__store_migrations[] = {
    /* 1: workspace metadata, objects with versions, operation log */
    "CREATE TABLE meta (\n"
    "  key TEXT PRIMARY KEY,\n"
    "  value TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE objects (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  path TEXT NOT NULL UNIQUE CHECK (length(path) BETWEEN 1 AND 255),\n"
    "  kind TEXT NOT NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),\n"
    "  algorithm TEXT NOT NULL DEFAULT '',\n"
    "  scheme TEXT NOT NULL DEFAULT '',\n"
    "  usage TEXT NOT NULL DEFAULT '',\n"
    "  parent_id INTEGER REFERENCES objects(id) ON DELETE RESTRICT,\n"
    "  version INTEGER NOT NULL DEFAULT 1,\n"
    "  persistent_handle INTEGER UNIQUE,\n"
    "  metadata TEXT NOT NULL DEFAULT '{}',\n"
    "  created_at INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX objects_parent ON objects(parent_id);\n"
    "CREATE TABLE object_versions (\n"
    "  object_id INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,\n"
    "  version INTEGER NOT NULL,\n"
    "  tpm_public BLOB NOT NULL,\n"
    "  tpm_private BLOB NOT NULL,\n"
    "  tpm_name BLOB NOT NULL,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY (object_id, version)\n"
    ");\n"
    "CREATE TABLE events (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  at INTEGER NOT NULL,\n"
    "  actor TEXT NOT NULL,\n"
    "  action TEXT NOT NULL,\n"
    "  object_id INTEGER,\n"
    "  object_path TEXT,\n"
    "  outcome TEXT NOT NULL DEFAULT 'ok',\n"
    "  details TEXT NOT NULL DEFAULT '{}'\n"
    ");\n"
    "CREATE INDEX events_object ON events(object_id);\n",
    /* 2: the parent version a key version was wrapped under, so rotating a storage key keeps
     * the keys below it loadable */
    "ALTER TABLE object_versions ADD COLUMN parent_version INTEGER;\n",
    /* 3: ciphertext kept beside a sealed key (secrets larger than the TPM seals directly) */
    "ALTER TABLE object_versions ADD COLUMN payload BLOB;\n",
    /* 4: approvals by authority identities (PolicyAuthorize): the signed policy digests */
    "CREATE TABLE approvals (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  authority TEXT NOT NULL,\n"
    "  authority_name TEXT NOT NULL,\n"
    "  policy_digest TEXT NOT NULL,\n"
    "  policy_ref TEXT NOT NULL DEFAULT '',\n"
    "  pcrs TEXT NOT NULL DEFAULT '[]',\n"
    "  signature BLOB NOT NULL,\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX approvals_lookup ON approvals(authority_name, policy_digest);\n",
    /* 5: sign requests under profiles that require approval (two-person) */
    "CREATE TABLE sign_approvals (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  object_id INTEGER,\n"
    "  object_path TEXT NOT NULL,\n"
    "  key_version INTEGER NOT NULL,\n"
    "  digest_alg TEXT NOT NULL,\n"
    "  digest TEXT NOT NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'used')),\n"
    "  requested_by TEXT,\n"
    "  requested_at INTEGER NOT NULL,\n"
    "  decided_by TEXT,\n"
    "  decided_at INTEGER,\n"
    "  reason TEXT,\n"
    "  used_at INTEGER\n"
    ");\n",
};

const int cit__store_n_migrations = sizeof(cit__store_migrations) / sizeof(cit__store_migrations[0]);
