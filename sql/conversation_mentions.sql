-- Mentions per conversation, speaker and product: the detail behind mention_counts.
SELECT conversation_id,
       conversation_date,
       interaction_type,
       participant,
       product,
       COUNT(*) AS mentions,
       MAX(dictionary_version) AS dictionary_version
FROM mentions
GROUP BY conversation_id, conversation_date, interaction_type, participant, product
ORDER BY conversation_id, participant, product
