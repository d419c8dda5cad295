-- Ticket SLA results of every customer for tickets created in [$1, $2), by
-- customer and current priority (one query for all customers: planning it
-- costs more than running it). Percentiles use the nearest rank over stopped clocks:
-- sorted[ceil(p × n) − 1], computed with integers: ceil(n/2) = (n + 1) / 2 and
-- ceil(9n/10) = (9n + 9) / 10.
WITH t AS (
    SELECT * FROM tickets
    WHERE created_ms >= $1 AND created_ms < $2
),
counts AS (
    SELECT customer, priority,
           COUNT(*) AS count,
           SUM(CASE WHEN response_verdict = 'met' THEN 1 ELSE 0 END) AS response_met,
           SUM(CASE WHEN response_verdict = 'breached' THEN 1 ELSE 0 END) AS response_breached,
           SUM(CASE WHEN response_verdict = 'pending' THEN 1 ELSE 0 END) AS response_pending,
           SUM(CASE WHEN resolution_verdict = 'met' THEN 1 ELSE 0 END) AS resolution_met,
           SUM(CASE WHEN resolution_verdict = 'breached' THEN 1 ELSE 0 END) AS resolution_breached,
           SUM(CASE WHEN resolution_verdict = 'pending' THEN 1 ELSE 0 END) AS resolution_pending
    FROM t GROUP BY customer, priority
),
resp AS (
    SELECT customer, priority, response_ms AS v,
           ROW_NUMBER() OVER (PARTITION BY customer, priority ORDER BY response_ms) AS rn,
           COUNT(*) OVER (PARTITION BY customer, priority) AS n
    FROM t WHERE response_ms IS NOT NULL
),
resol AS (
    SELECT customer, priority, resolution_ms AS v,
           ROW_NUMBER() OVER (PARTITION BY customer, priority ORDER BY resolution_ms) AS rn,
           COUNT(*) OVER (PARTITION BY customer, priority) AS n
    FROM t WHERE resolution_ms IS NOT NULL
),
resp_p AS (
    SELECT customer, priority,
           MAX(CASE WHEN rn = (n + 1) / 2 THEN v END) AS p50,
           MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN v END) AS p90
    FROM resp GROUP BY customer, priority
),
resol_p AS (
    SELECT customer, priority,
           MAX(CASE WHEN rn = (n + 1) / 2 THEN v END) AS p50,
           MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN v END) AS p90
    FROM resol GROUP BY customer, priority
)
SELECT counts.customer, counts.priority, counts.count,
       counts.response_met, counts.response_breached, counts.response_pending,
       resp_p.p50 AS response_p50_ms, resp_p.p90 AS response_p90_ms,
       counts.resolution_met, counts.resolution_breached, counts.resolution_pending,
       resol_p.p50 AS resolution_p50_ms, resol_p.p90 AS resolution_p90_ms
FROM counts
LEFT JOIN resp_p ON counts.customer = resp_p.customer AND counts.priority = resp_p.priority
LEFT JOIN resol_p ON counts.customer = resol_p.customer AND counts.priority = resol_p.priority
ORDER BY counts.customer, counts.priority
