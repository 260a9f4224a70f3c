-- Sentiment per product: mentions by sign, the negative share of the scored ones, the mean.
-- The sentiment is the STA phrase's for voice, the lexicon's for English text (lake-format.md,
-- "Sentiment"); most negative first.
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
