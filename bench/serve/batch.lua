-- wrk script: POST /get_reward with a batch of 256 items of ~3 KB each.
local think = string.rep("Assume A is true; then the second formula forces B. ", 60)
local query = ('"<|im_start|>assistant\\n<think>' .. think .. '</think><answer>(1) A is false\\n(2) B is true</answer>"')
local queries, labels = {}, {}
for i = 1, 256 do
  queries[i] = query
  labels[i] = '"(1) A is False\\n(2) B is True\\n"'
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": [' .. table.concat(queries, ",") .. '], "labels": [' .. table.concat(labels, ",") .. ']}'
