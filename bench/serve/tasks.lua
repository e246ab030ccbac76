-- wrk script: POST /tasks for N fresh tasks of one (family, level), each request from another
-- candidate index (no session: every request generates; nothing is cached).
-- env: FAMILY, LEVEL, N (default 64)
local family = os.getenv("FAMILY") or "deduction"
local level = os.getenv("LEVEL") or "1"
local n = os.getenv("N") or "64"
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local start = (counter * 7919 + math.random(0, 1000000)) * 64
  local body = string.format('{"family": "%s", "level": %s, "n": %s, "start": %d}', family, level, n, start)
  return wrk.format(nil, "/tasks", nil, body)
end
