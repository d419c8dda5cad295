-- Time per service and state inside the report period [$1, $2), in milliseconds,
-- and the longest single interval of each state (clipped to the period).
-- availability_intervals holds maximal intervals: adjacent intervals never share a state.
SELECT service,
       state,
       SUM(LEAST(end_ms, $2) - GREATEST(start_ms, $1)) AS ms,
       MAX(LEAST(end_ms, $2) - GREATEST(start_ms, $1)) AS longest_ms
FROM availability_intervals
WHERE end_ms > $1 AND start_ms < $2
GROUP BY service, state
ORDER BY service, state
