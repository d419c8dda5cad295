"""The speed peer of `slaflow replay` (issue 14): DuckDB on one thread answers
the availability question an analyst would ask of the same monitoring file
(per service and source, each probe holds its status until the next probe of
that source, at most stale_after; seconds per status).

Usage: peer_duckdb.py MONITORING.ndjson STALE_AFTER_MS  -> prints "<median seconds of 5> <rows>"
"""
import sys, time, duckdb
path, stale_ms = sys.argv[1], int(sys.argv[2])
con = duckdb.connect(config={"threads": 1})
sql = f"""
WITH raw AS (
  SELECT service, source, status,
         COALESCE(TRY_CAST(ts AS BIGINT),
                  epoch_ms(TRY_CAST(json_extract_string(ts, '$') AS TIMESTAMPTZ))) AS ts
  FROM read_json('{path}', format='newline_delimited', ignore_errors=true,
                 columns={{'ts':'JSON','service':'VARCHAR','kind':'VARCHAR','source':'VARCHAR','status':'VARCHAR'}})
  WHERE kind = 'probe'
), spans AS (
  SELECT service, source, status,
         LEAST(COALESCE(LEAD(ts) OVER (PARTITION BY service, source ORDER BY ts), ts + {stale_ms}), ts + {stale_ms}) - ts AS ms
  FROM raw WHERE ts IS NOT NULL
)
SELECT service, source, status, SUM(ms) / 1000.0 AS seconds FROM spans GROUP BY ALL ORDER BY ALL
"""
times = []
for _ in range(5):
    t = time.perf_counter(); rows = con.execute(sql).fetchall(); times.append(time.perf_counter() - t)
times.sort()
print(f"{times[2]:.3f} {len(rows)}")
