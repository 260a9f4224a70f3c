-- Sentiment per product and day (#20): mentions by the sign of their sentiment (the STA phrase's
-- for voice, the lexicon's for English text otherwise; VADER's thresholds, ±0.05) and the mean
-- score of the scored ones. NULL in rows synced from aggregates written before sentiment was
-- read; the next `convlake run` (or `aggregate` then `sync`) fills them.
-- ADD COLUMN without a default changes only the catalog: no rewrite, a brief exclusive lock.
-- On the partitioned conversation_mentions it adds the columns to every partition.
ALTER TABLE product_mentions
    ADD COLUMN positive       BIGINT,
    ADD COLUMN negative       BIGINT,
    ADD COLUMN neutral        BIGINT,
    ADD COLUMN unscored       BIGINT,
    ADD COLUMN sentiment_mean DOUBLE PRECISION;

-- Per conversation, speaker and product; sentiment_milli is the sum of the scored mentions'
-- scores in thousandths (mean = sentiment_milli / 1000.0 / (positive + negative + neutral)).
ALTER TABLE conversation_mentions
    ADD COLUMN positive        BIGINT,
    ADD COLUMN negative        BIGINT,
    ADD COLUMN neutral         BIGINT,
    ADD COLUMN unscored        BIGINT,
    ADD COLUMN sentiment_milli BIGINT;

-- No new index: the sentiment-per-product query (one product over a date range) is served by
-- idx_mentions_product_date (product_name, recorded_date), and every index costs each sync
-- (migration 0005).
