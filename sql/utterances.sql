-- Every utterance of the current copy of every conversation.
CREATE VIEW utterances AS
SELECT r.conversation_id,
       r.communication_id,
       r.conversation_date,
       r.interaction_type,
       r.participant,
       r.utterance_index,
       r.start_ms,
       r.text,
       r.snapshot,
       r.subtype
FROM raw AS r
JOIN current_copies AS c
  ON r.conversation_id = c.conversation_id AND r.snapshot = c.snapshot
