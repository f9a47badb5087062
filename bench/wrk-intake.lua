-- wrk script for bench/intake.sh: posts Alertmanager webhook payloads, each a distinct episode
-- (unique fingerprint per request), at a paced rate: delay() spaces each connection's requests
-- so that connections x (1000 / delay_ms) is the target rate. Mode "healthz" GETs /healthz at
-- the same pace (the baseline). Prints one machine-readable result line.

local thread_counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_counter)
  thread_counter = thread_counter + 1
  table.insert(threads, thread)
end

function init(args)
  rate = tonumber(args[1]) or 0
  connections = tonumber(args[2]) or 1
  mode = args[3] or "alerts"
  token = args[4] or ""
  run_id = args[5] or "0"
  counter = 0
  accepted = 0
  refused = 0
end

function delay()
  if rate <= 0 then return 0 end
  return connections * 1000 / rate
end

function request()
  counter = counter + 1
  if mode == "healthz" then
    return wrk.format("GET", "/healthz")
  end
  local fingerprint = string.format("%04x%04x%08x", tonumber(run_id) % 65536, tid, counter)
  local body = '{"receiver":"triage","status":"firing","version":"4",' ..
    '"groupKey":"{}/{severity=\\"warning\\"}:{alertname=\\"CabalTriageTest\\"}","truncatedAlerts":0,' ..
    '"groupLabels":{"alertname":"CabalTriageTest"},"commonLabels":{},"commonAnnotations":{},' ..
    '"externalURL":"http://alertmanager:9093","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"CabalTriageTest","severity":"warning","instance":"bench"},' ..
    '"annotations":{"summary":"bench"},"startsAt":"2026-11-28T20:00:00Z",' ..
    '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"' .. fingerprint .. '"}]}\n'
  return wrk.format("POST", "/api/v1/alerts",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
  if status == 202 or status == 200 then
    accepted = accepted + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("accepted")
    bad = bad + t:get("refused")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT accepted=%d refused=%d errors=%d seconds=%.2f rate=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    ok, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    seconds, ok / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
