-- Mentions per conversation, speaker and product: the detail behind mention_counts.
-- Rows are ordered by the current copy's snapshot first, so the local engine can build the
-- file one range of snapshots at a time (each conversation's mentions come from one snapshot)
-- and write the same bytes a single query would.
SELECT conversation_id,
       conversation_date,
       interaction_type,
       participant,
       product,
       COUNT(*) AS mentions,
       MAX(dictionary_version) AS dictionary_version,
       -- Mentions by the sign of their sentiment: VADER's thresholds (above 0.05 positive,
       -- below -0.05 negative), which put the STA values 1, 0 and -1 where they belong.
       SUM(CASE WHEN sentiment > 0.05 THEN 1 ELSE 0 END) AS positive,
       SUM(CASE WHEN sentiment < -0.05 THEN 1 ELSE 0 END) AS negative,
       SUM(CASE WHEN sentiment BETWEEN -0.05 AND 0.05 THEN 1 ELSE 0 END) AS neutral,
       SUM(CASE WHEN sentiment IS NULL THEN 1 ELSE 0 END) AS unscored,
       -- The sum of the scores in thousandths (scores are rounded to them): an integer, so
       -- every order of adding gives the same mean.
       COALESCE(SUM(CAST(ROUND(sentiment * 1000) AS BIGINT)), 0) AS sentiment_milli
FROM mentions
GROUP BY snapshot, conversation_id, conversation_date, interaction_type, participant, product
ORDER BY snapshot, conversation_id, participant, product
