-- One row per sync that changed something: what was synced and how.
CREATE TABLE sync_state (
    id                 BIGSERIAL   PRIMARY KEY,
    dictionary_version TEXT        NOT NULL,
    content_hash       TEXT        NOT NULL,
    row_count          BIGINT      NOT NULL,
    inserted           BIGINT      NOT NULL,
    updated            BIGINT      NOT NULL,
    deleted            BIGINT      NOT NULL,
    synced_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
