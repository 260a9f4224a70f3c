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
       MAX(dictionary_version) AS dictionary_version
FROM mentions
GROUP BY snapshot, conversation_id, conversation_date, interaction_type, participant, product
ORDER BY snapshot, conversation_id, participant, product
