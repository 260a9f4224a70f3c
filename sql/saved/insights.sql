-- The flagged insights of the latest aggregate (what report.html opens with): kind, window,
-- the numbers and the top topic; every test, flagged or not, is in product_insights.
SELECT product,
       kind,
       time_window,
       window_from,
       window_to,
       ROUND(value, 3) AS value,
       ROUND(baseline, 3) AS baseline,
       ROUND(ratio, 2) AS ratio,
       q_value,
       top_topic
FROM product_insights
WHERE flagged
ORDER BY time_window, kind, product
