-- wrk script: POST a valid conf.echo body.
wrk.method = "POST"
wrk.body = '{"name":"bench","n":7,"tags":["a","b"]}'
wrk.headers["Content-Type"] = "application/json"
