-- Counts that fit, names of any length.
-- The lake's counts are 64-bit; INTEGER stopped at 2,147,483,647 and the sync clamped larger
-- values without a word. BIGINT holds every count the lake can hold, and the sync now refuses a
-- value that does not fit instead of changing it.
-- VARCHAR(50)/VARCHAR(200)/VARCHAR(20) failed a whole sync over one long product name or
-- interaction type from a dictionary or a source; TEXT is stored the same way and has no limit.
-- On the partitioned conversation_mentions (0004) ALTER TABLE changes the parent and every
-- attached partition, the default one included; a month partition the sync creates later
-- copies the new types (CREATE TABLE … LIKE conversation_mentions). A partition that was
-- detached before this migration keeps the old types: change them the same way before
-- attaching it again.
-- BIGINT rewrites both tables (and rebuilds their indexes) under an exclusive lock, in the
-- migration's transaction: readers wait for it, and a failure leaves the old schema. A view
-- over these columns makes PostgreSQL refuse the change ("cannot alter type of a column used
-- by a view or rule"): drop the view, run `convlake migrate`, create the view again.
ALTER TABLE product_mentions
    ALTER COLUMN interaction_type   TYPE TEXT,
    ALTER COLUMN product_name       TYPE TEXT,
    ALTER COLUMN mention_count      TYPE BIGINT,
    ALTER COLUMN conversation_count TYPE BIGINT;

ALTER TABLE conversation_mentions
    ALTER COLUMN interaction_type TYPE TEXT,
    ALTER COLUMN participant      TYPE TEXT,
    ALTER COLUMN product          TYPE TEXT,
    ALTER COLUMN mentions         TYPE BIGINT;
