-- Mentions found with the current dictionary in the current copy of every conversation.
CREATE VIEW mentions AS
SELECT m.conversation_id,
       m.conversation_date,
       m.interaction_type,
       m.participant,
       m.utterance_index,
       m.product,
       m.matched_text,
       m.start_char,
       m.end_char,
       m.dictionary_version,
       m.snapshot,
       m.sentiment,
       m.sentiment_source,
       m.match_kind
FROM mentions_all AS m
JOIN current_copies AS c
  ON m.conversation_id = c.conversation_id AND m.snapshot = c.snapshot
