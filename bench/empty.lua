-- wrk script: POST an empty JSON object.
wrk.method = "POST"
wrk.body = '{}'
wrk.headers["Content-Type"] = "application/json"
