-- Per-conversation detail a BI user drills into: mentions per conversation, speaker and product.
CREATE TABLE conversation_mentions (
    conversation_id    TEXT        NOT NULL,
    conversation_date  DATE        NOT NULL,
    interaction_type   VARCHAR(50) NOT NULL,
    participant        VARCHAR(20) NOT NULL,
    product            VARCHAR(200) NOT NULL,
    mentions           INTEGER     NOT NULL,
    dictionary_version TEXT        NOT NULL,
    synced_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, participant, product)
);

CREATE INDEX idx_conversation_mentions_product_date ON conversation_mentions (product, conversation_date);
CREATE INDEX idx_conversation_mentions_date ON conversation_mentions (conversation_date);

-- The typical dashboard queries: one product over a date range, one interaction type over a date range.
CREATE INDEX idx_mentions_product_date ON product_mentions (product_name, recorded_date);
CREATE INDEX idx_mentions_type_date ON product_mentions (interaction_type, recorded_date);

ALTER TABLE sync_state ADD COLUMN conversation_rows BIGINT NOT NULL DEFAULT 0;
