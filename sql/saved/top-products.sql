-- Products by mentions over the whole lake, with the conversations that mention them and their share of all mentions.
SELECT product,
       SUM(mentions) AS mentions,
       -- A conversation has one day and one interaction type, so this sum counts it once.
       SUM(conversations) AS conversations,
       ROUND(100.0 * SUM(mentions) / (SELECT SUM(mentions) FROM mention_counts), 1) AS pct_of_mentions
FROM mention_counts
GROUP BY product
ORDER BY mentions DESC, product
