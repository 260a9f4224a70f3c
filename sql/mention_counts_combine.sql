-- mention_counts from per-chunk parts: the local aggregate builds conversation_mentions in
-- chunks of snapshots and runs mention_counts_parts.sql on each chunk's rows. A conversation's rows
-- are all in one chunk (its current snapshot's), so the parts' distinct-conversation counts add
-- up to the whole's, and the result equals mention_counts.sql over the whole file.
SELECT conversation_date,
       interaction_type,
       product,
       SUM(mentions) AS mentions,
       SUM(conversations) AS conversations,
       MAX(dictionary_version) AS dictionary_version,
       SUM(positive) AS positive,
       SUM(negative) AS negative,
       SUM(neutral) AS neutral,
       SUM(unscored) AS unscored,
       CASE WHEN SUM(positive + negative + neutral) > 0
            THEN CAST(SUM(sentiment_milli) AS DOUBLE)
                 / CAST(SUM(positive + negative + neutral) AS DOUBLE) / 1000.0
       END AS sentiment_mean
FROM mention_counts_parts
GROUP BY conversation_date, interaction_type, product
ORDER BY conversation_date, interaction_type, product
