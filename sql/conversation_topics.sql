-- The Speech and Text Analytics topics of the current copy of every conversation: the rows of
-- extract's per-snapshot topics files (read from the stored transcripts) whose snapshot is the
-- conversation's current copy. One row per topic detected in an utterance.
SELECT t.conversation_id,
       t.conversation_date,
       t.interaction_type,
       t.participant,
       t.utterance_index,
       t.topic,
       t.phrase_start,
       t.phrase_end
FROM topics_all AS t
JOIN current_copies AS c
  ON t.conversation_id = c.conversation_id AND t.snapshot = c.snapshot
ORDER BY t.conversation_id, t.utterance_index, t.topic, t.phrase_start
