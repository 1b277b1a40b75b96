"""Credits queue manager for AI-render jobs run on RunningHub (issue 5).

models (tables, statuses, request/response models) -> store (SQL) -> runninghub (HTTP
client) -> slots (serialized slot decisions, task launch) -> service (the routes) ->
sweep (periodic repair). The Python mirror of the browser's JobManager is test code
(tests/credits_client.py).
"""
