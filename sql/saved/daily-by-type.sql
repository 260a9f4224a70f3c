-- Mentions and conversations with a mention per day and interaction type, newest day first.
SELECT conversation_date,
       interaction_type,
       COUNT(*) AS mentions,
       COUNT(DISTINCT conversation_id) AS conversations
FROM mentions
GROUP BY conversation_date, interaction_type
ORDER BY conversation_date DESC, interaction_type
