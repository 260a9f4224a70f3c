-- Topics, co-mentions and insights (#20), each kept equal to its table of the lake's aggregates
-- generation by the same sync (one transaction with product_mentions and conversation_mentions).

-- Per day, product and Speech and Text Analytics topic: the conversations where both occur.
CREATE TABLE product_topics (
    recorded_date      DATE        NOT NULL,
    product_name       TEXT        NOT NULL,
    topic              TEXT        NOT NULL,
    conversation_count BIGINT      NOT NULL,
    dictionary_version TEXT        NOT NULL,
    synced_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (recorded_date, product_name, topic)
);
-- "What do customers talk about with product X" over a date range.
CREATE INDEX idx_product_topics_product_date ON product_topics (product_name, recorded_date);

-- Per ISO week (week_start is its Monday) and pair of products (product_a < product_b): the
-- conversations that mention both.
CREATE TABLE co_mentions (
    week_start         DATE        NOT NULL,
    product_a          TEXT        NOT NULL,
    product_b          TEXT        NOT NULL,
    conversation_count BIGINT      NOT NULL,
    dictionary_version TEXT        NOT NULL,
    synced_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (week_start, product_a, product_b)
);
-- "Which products come up with product X": X is on either side of a pair.
CREATE INDEX idx_co_mentions_a_week ON co_mentions (product_a, week_start);
CREATE INDEX idx_co_mentions_b_week ON co_mentions (product_b, week_start);

-- Every test of each product's latest day and week against its baseline, flagged or not.
-- kind: spike or drop (the rate test, by its direction) or sentiment_shift (the negative share);
-- value/baseline: conversations (or the negative share, 0..1); ratio with its 95% interval;
-- window_count/baseline_count: mentions (or scored mentions); examples: a JSON array of the
-- quotes of a flagged insight (examples::jsonb to query it).
-- A few rows per product: the primary key is the only index it needs.
CREATE TABLE product_insights (
    product_name       TEXT             NOT NULL,
    time_window        TEXT             NOT NULL,
    kind               TEXT             NOT NULL,
    flagged            BOOLEAN          NOT NULL,
    window_from        DATE             NOT NULL,
    window_to          DATE             NOT NULL,
    value              DOUBLE PRECISION NOT NULL,
    baseline           DOUBLE PRECISION NOT NULL,
    ratio              DOUBLE PRECISION NOT NULL,
    ratio_low          DOUBLE PRECISION NOT NULL,
    ratio_high         DOUBLE PRECISION NOT NULL,
    p_value            DOUBLE PRECISION NOT NULL,
    q_value            DOUBLE PRECISION NOT NULL,
    window_count       BIGINT           NOT NULL,
    baseline_count     BIGINT           NOT NULL,
    examples           TEXT             NOT NULL,
    dictionary_version TEXT             NOT NULL,
    -- Of a flagged insight's window: the STA topic detected in the utterances that name the
    -- product in most conversations, in how many, and in how many they carry any (NULL: none).
    top_topic               TEXT,
    top_topic_conversations BIGINT,
    topic_conversations     BIGINT,
    synced_at          TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (product_name, time_window, kind)
);

ALTER TABLE sync_state ADD COLUMN topic_rows BIGINT NOT NULL DEFAULT 0,
                       ADD COLUMN co_mention_rows BIGINT NOT NULL DEFAULT 0,
                       ADD COLUMN insight_rows BIGINT NOT NULL DEFAULT 0;
