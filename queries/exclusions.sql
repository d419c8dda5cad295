-- The exclusions in force (contract section 13) whose window overlaps the
-- report period [$1, $2), per service in time order.
SELECT service, exclusion_id, start_ms, end_ms, reason, approved_by, versions
FROM exclusions
WHERE end_ms > $1 AND start_ms < $2
ORDER BY service, start_ms, exclusion_id
