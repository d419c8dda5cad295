-- Counted increases of the counters request SLOs read (contract section 14)
-- dated in the report period [$1, $2), the exclusions in force taken out, in
-- sample order (summed in that order, so a report is the same on every run).
SELECT service, counter, increase
FROM counter_increases
WHERE ts_ms >= $1 AND ts_ms < $2 AND NOT excluded
ORDER BY service, counter, ts_ms
