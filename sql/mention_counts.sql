-- Mentions (occurrences) and distinct conversations per day, interaction type and product.
SELECT conversation_date,
       interaction_type,
       product,
       COUNT(*) AS mentions,
       COUNT(DISTINCT conversation_id) AS conversations,
       MAX(dictionary_version) AS dictionary_version
FROM mentions
GROUP BY conversation_date, interaction_type, product
ORDER BY conversation_date, interaction_type, product
