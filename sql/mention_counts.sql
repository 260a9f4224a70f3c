-- Mentions (occurrences) and distinct conversations per day, interaction type and product.
-- Built from the per-conversation detail (conversation_mentions.sql: one row per conversation,
-- speaker and product), which is several times smaller than the mentions themselves.
SELECT conversation_date,
       interaction_type,
       product,
       SUM(mentions) AS mentions,
       COUNT(DISTINCT conversation_id) AS conversations,
       MAX(dictionary_version) AS dictionary_version
FROM conversation_mentions
GROUP BY conversation_date, interaction_type, product
ORDER BY conversation_date, interaction_type, product
