-- The operational state intervals of every service that overlap the report
-- period [$1, $2), clipped to it, in time order per service. The report
-- derives the contractual figures (service hours, exclusions: contract
-- section 13) and the longest outage from them.
-- availability_intervals holds maximal intervals: adjacent intervals never share a state.
SELECT service,
       state,
       GREATEST(start_ms, $1) AS clipped_start_ms,
       LEAST(end_ms, $2) AS clipped_end_ms
FROM availability_intervals
WHERE end_ms > $1 AND start_ms < $2
-- Ordered by the table's own start_ms: the same order as the clipped one
-- (a service's intervals do not overlap, so only its first can start before
-- $1), and the order the table is built in, so the rows need no sort.
ORDER BY service, start_ms
