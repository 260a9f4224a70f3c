-- conversation_mentions partitioned by month of conversation_date, so a dashboard over a date
-- range reads only the months it asks for, and old months can be detached or dropped whole.
-- The sync creates the partition of each month it loads (conversation_mentions_yYYYYmMM) before
-- loading it; rows of a month without a partition land in conversation_mentions_default, and
-- the next sync that loads that month moves them into the month's partition.
-- A partitioned table's primary key must contain the partition key, so conversation_date joins
-- it; a conversation has one date, so the key identifies the same rows as before.
CREATE TABLE conversation_mentions_by_month (
    conversation_id    TEXT         NOT NULL,
    conversation_date  DATE         NOT NULL,
    interaction_type   VARCHAR(50)  NOT NULL,
    participant        VARCHAR(20)  NOT NULL,
    product            VARCHAR(200) NOT NULL,
    mentions           INTEGER      NOT NULL,
    dictionary_version TEXT         NOT NULL,
    synced_at          TIMESTAMPTZ  NOT NULL DEFAULT now()
) PARTITION BY RANGE (conversation_date);

CREATE TABLE conversation_mentions_default PARTITION OF conversation_mentions_by_month DEFAULT;

INSERT INTO conversation_mentions_by_month
    (conversation_id, conversation_date, interaction_type, participant, product, mentions,
     dictionary_version, synced_at)
SELECT conversation_id, conversation_date, interaction_type, participant, product, mentions,
       dictionary_version, synced_at
FROM conversation_mentions;

DROP TABLE conversation_mentions;
ALTER TABLE conversation_mentions_by_month RENAME TO conversation_mentions;

ALTER TABLE conversation_mentions
    ADD CONSTRAINT conversation_mentions_pkey
    PRIMARY KEY (conversation_id, participant, product, conversation_date);
CREATE INDEX idx_conversation_mentions_product_date ON conversation_mentions (product, conversation_date);
CREATE INDEX idx_conversation_mentions_date ON conversation_mentions (conversation_date);
