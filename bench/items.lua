-- wrk script: POST bench.items (three middlewares, 10 rows from SQLite).
wrk.method = "POST"
wrk.body = '{"offset":0}'
wrk.headers["Content-Type"] = "application/json"
