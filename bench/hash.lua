-- wrk script: POST bench.hash (Argon2id through dk_blocking).
wrk.method = "POST"
wrk.body = '{"password":"correct horse battery staple"}'
wrk.headers["Content-Type"] = "application/json"
