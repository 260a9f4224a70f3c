-- Per ISO week (its Monday) and pair of products, the conversations that mention both (by
-- anyone, anywhere in the conversation). Each pair once: product_a sorts before product_b.
WITH products AS (
    SELECT DISTINCT conversation_id,
           -- The Monday on or before the day, in day numbers (1970-01-01 was a Thursday), so
           -- any date works (a cast to a timestamp overflows past 2262).
           CAST(CAST(CAST(conversation_date AS INT)
                     - ((CAST(conversation_date AS INT) + 3) % 7 + 7) % 7 AS INT) AS DATE) AS week,
           product,
           dictionary_version
    FROM conversation_mentions
)
SELECT a.week,
       a.product AS product_a,
       b.product AS product_b,
       COUNT(*) AS conversations,
       MAX(a.dictionary_version) AS dictionary_version
FROM products AS a
JOIN products AS b
  ON a.conversation_id = b.conversation_id AND a.product < b.product
GROUP BY a.week, a.product, b.product
ORDER BY a.week, a.product, b.product
