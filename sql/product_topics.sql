-- Per day, product and topic: the conversations in which the product is mentioned and the
-- topic detected (anywhere in the conversation, by anyone). Built from the two per-conversation
-- tables of the same generation.
SELECT m.conversation_date,
       m.product,
       t.topic,
       COUNT(DISTINCT m.conversation_id) AS conversations,
       MAX(m.dictionary_version) AS dictionary_version
FROM (SELECT DISTINCT conversation_id, conversation_date, product, dictionary_version
      FROM conversation_mentions) AS m
JOIN (SELECT DISTINCT conversation_id, topic FROM conversation_topics) AS t
  ON m.conversation_id = t.conversation_id
GROUP BY m.conversation_date, m.product, t.topic
ORDER BY m.conversation_date, m.product, t.topic
