-- toolgate schema, version 8: language-model nodes (Agent, Self-Review) and the Code sandbox
-- (issue 15).
-- (1) node_executions.input_tokens / output_tokens: the model tokens an Agent or Self-Review
--     execution used (summed over its model calls, retries included); NULL for other nodes. A
--     run's usage is the sum over its rows (GET /api/runs/{id}: usage).
-- (2) tool_executions.tool_call_id: the model's id of the tool call an Agent made (Anthropic
--     tool_use.id, OpenAI tool_calls[].id), so a re-claimed run can pair a journaled call with
--     the transcript; NULL for MCP and API nodes' own calls.

ALTER TABLE node_executions ADD COLUMN input_tokens INTEGER;
ALTER TABLE node_executions ADD COLUMN output_tokens INTEGER;
ALTER TABLE tool_executions ADD COLUMN tool_call_id TEXT;
