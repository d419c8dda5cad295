-- Changes (contract section 15) deployed in the report period [$1, $2), with
-- their last outcome and the outages attributed to them.
SELECT service, change_id, outcome, induced_outages
FROM changes
WHERE ts_ms >= $1 AND ts_ms < $2
ORDER BY service, ts_ms, change_id
