-- The operational state intervals of every service that overlap the report
-- period [$1, $2), clipped to it, in time order per service. The report
-- derives the contractual figures (service hours, exclusions: contract
-- section 13) and the longest outage from them.
-- availability_intervals holds maximal intervals: adjacent intervals never share a state.
SELECT service,
       state,
       GREATEST(start_ms, $1) AS start_ms,
       LEAST(end_ms, $2) AS end_ms
FROM availability_intervals
WHERE end_ms > $1 AND start_ms < $2
ORDER BY service, start_ms
