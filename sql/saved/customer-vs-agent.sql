-- Mentions per product by who said them: customer, agent or someone else (IVR, unknown).
SELECT product,
       COUNT(*) AS mentions,
       SUM(CASE WHEN participant = 'customer' THEN 1 ELSE 0 END) AS customer,
       SUM(CASE WHEN participant = 'agent' THEN 1 ELSE 0 END) AS agent,
       SUM(CASE WHEN participant NOT IN ('customer', 'agent') THEN 1 ELSE 0 END) AS other,
       ROUND(100.0 * SUM(CASE WHEN participant = 'customer' THEN 1 ELSE 0 END) / COUNT(*), 1) AS customer_pct
FROM mentions
GROUP BY product
ORDER BY mentions DESC, product
