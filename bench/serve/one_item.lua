-- wrk script: OpenRLHF-style one-item POST /get_reward with ~3 KB of reasoning.
local think = string.rep("Assume A is true; then the second formula forces B. ", 60)
local query = "<|im_start|>assistant\n<think>" .. think .. "</think><answer>(1) A is false\n(2) B is true</answer>"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": ["' .. query:gsub("\n", "\\n") .. '"], "labels": ["(1) A is False\\n(2) B is True\\n"]}'
