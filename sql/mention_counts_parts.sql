-- One chunk's part of mention_counts (the local aggregate runs conversation_mentions.sql in
-- chunks of snapshots): the sums mention_counts_combine.sql adds up, the sentiment as integer
-- thousandths so the combined mean is the whole query's to the bit.
SELECT conversation_date,
       interaction_type,
       product,
       SUM(mentions) AS mentions,
       COUNT(DISTINCT conversation_id) AS conversations,
       MAX(dictionary_version) AS dictionary_version,
       SUM(positive) AS positive,
       SUM(negative) AS negative,
       SUM(neutral) AS neutral,
       SUM(unscored) AS unscored,
       SUM(sentiment_milli) AS sentiment_milli
FROM conversation_mentions
GROUP BY conversation_date, interaction_type, product
