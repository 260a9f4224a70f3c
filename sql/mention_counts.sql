-- Mentions (occurrences) and distinct conversations per day, interaction type and product.
-- Built from the per-conversation detail (conversation_mentions.sql: one row per conversation,
-- speaker and product), which is several times smaller than the mentions themselves.
SELECT conversation_date,
       interaction_type,
       product,
       SUM(mentions) AS mentions,
       COUNT(DISTINCT conversation_id) AS conversations,
       MAX(dictionary_version) AS dictionary_version,
       SUM(positive) AS positive,
       SUM(negative) AS negative,
       SUM(neutral) AS neutral,
       SUM(unscored) AS unscored,
       -- The mean score of the scored mentions; NULL when none is scored.
       CASE WHEN SUM(positive + negative + neutral) > 0
            THEN CAST(SUM(sentiment_milli) AS DOUBLE)
                 / CAST(SUM(positive + negative + neutral) AS DOUBLE) / 1000.0
       END AS sentiment_mean
FROM conversation_mentions
GROUP BY conversation_date, interaction_type, product
ORDER BY conversation_date, interaction_type, product
