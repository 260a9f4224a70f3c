-- What customers talk about with each product: per product, its Speech and Text Analytics
-- topics by the conversations where both occur (voice conversations with STA), and the share of
-- the product's conversations with any topic that have it; most frequent first.
SELECT p.product,
       p.topic,
       SUM(p.conversations) AS conversations,
       ROUND(100.0 * SUM(p.conversations) / MAX(t.with_topics), 1) AS pct_of_product
FROM product_topics AS p
JOIN (SELECT m.product, COUNT(DISTINCT m.conversation_id) AS with_topics
      FROM conversation_mentions AS m
      JOIN (SELECT DISTINCT conversation_id FROM conversation_topics) AS c
        ON m.conversation_id = c.conversation_id
      GROUP BY m.product) AS t
  ON t.product = p.product
GROUP BY p.product, p.topic
ORDER BY p.product, conversations DESC, p.topic
