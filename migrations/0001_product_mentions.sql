-- Daily product mentions per interaction type. Column names follow the original tutorial so
-- existing BI queries keep working; one row per (day, interaction type, product).
CREATE TABLE product_mentions (
    recorded_date      DATE         NOT NULL,
    interaction_type   VARCHAR(50)  NOT NULL,
    product_name       VARCHAR(200) NOT NULL,
    mention_count      INTEGER      NOT NULL,
    conversation_count INTEGER      NOT NULL,
    dictionary_version TEXT         NOT NULL,
    synced_at          TIMESTAMPTZ  NOT NULL DEFAULT now(),
    PRIMARY KEY (recorded_date, interaction_type, product_name)
);

CREATE INDEX idx_mentions_type_product ON product_mentions (interaction_type, product_name);
CREATE INDEX idx_mentions_date ON product_mentions (recorded_date);
