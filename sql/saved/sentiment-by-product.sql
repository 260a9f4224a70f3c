-- How customers and agents feel about each product: mentions by the sign of their sentiment
-- (the STA phrase's for voice, the lexicon's for English text; lake-format.md, "Sentiment"),
-- the negative share of the scored ones and their mean score.
SELECT product,
       SUM(mentions) AS mentions,
       SUM(positive) AS positive,
       SUM(neutral) AS neutral,
       SUM(negative) AS negative,
       SUM(unscored) AS unscored,
       ROUND(100.0 * SUM(negative) / NULLIF(SUM(positive + neutral + negative), 0), 1) AS negative_pct,
       ROUND(SUM(sentiment_mean * (positive + neutral + negative))
             / NULLIF(SUM(positive + neutral + negative), 0), 3) AS sentiment_mean
FROM mention_counts
GROUP BY product
ORDER BY negative_pct DESC, product
