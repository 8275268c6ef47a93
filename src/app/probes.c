/* Built-in answers given before the route table: redirects
 * (dk_app_redirect()) and the health endpoints for load balancers and
 * orchestrators
 * (docs/deployment.md "Health checks"):
 *   GET <health_path> (default /healthz): the process answers -> 200 {"status":"ok"}
 *   GET <ready_path>  (default /readyz): database and Redis reachable and not
 *       shutting down -> 200 {"status":"ok","checks":{...}}, else 503
 *       {"status":"unavailable","checks":{...}}.
 * They run before the route table and its middleware, like a framework 404. */
#include "internal.h"

#include <string.h>

static bool is_path(const char *want, const char *path)
{
    return want != NULL && *want != '\0' && strcmp(want, path) == 0;
}

int dk_app_redirect(dk_app *app, const char *path, const char *location)
{
    if (app == NULL || path == NULL || location == NULL || path[0] != '/' ||
        strpbrk(path, "\r\n") != NULL || strpbrk(location, "\r\n") != NULL || *location == '\0')
        return DK_EINVAL;
    if (app->redirects == NULL && (app->redirects = json_object()) == NULL)
        return DK_ENOMEM;
    return json_object_set_new(app->redirects, path, json_string(location)) == 0 ? 0 : DK_ENOMEM;
}

bool dk__probe(dk_app *app, dk_ctx *ctx, dk_request *req, dk_response *res)
{
    const dk_app_options *o = &app->opts;
    const char *to = json_string_value(json_object_get(app->redirects, req->path));
    if (to != NULL && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        res->status = 302;
        dk_response_set_header(res, "Location", to);
        dk_response_set_header(res, "Content-Type", "text/plain; charset=utf-8");
        dk_response_set_body(res, "Found\n", 6);
        return true;
    }
    bool health = is_path(o->health_path, req->path);
    if (!health && !is_path(o->ready_path, req->path))
        return false;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        dk_fail(ctx, 405, NULL);
        dk__render_failure(ctx, res, DK_EHTTP);
        dk_response_set_header(res, "Allow", "GET, HEAD");
        return true;
    }
    dk_response_set_header(res, "Cache-Control", "no-store");
    if (health) {
        res->status = 200;
        dk_response_set_json(res, json_pack("{s:s}", "status", "ok"));
        return true;
    }
    json_t *checks = json_object();
    bool stopping = atomic_load(&app->stop_requested) != 0;
    json_object_set_new(checks, "shutdown", json_string(stopping ? "in progress" : "no"));
    int rc = dk__services_ready(app, checks);
    bool ok = rc == 0 && !stopping;
    res->status = ok ? 200 : 503;
    dk_response_set_json(
        res, json_pack("{s:s, s:o}", "status", ok ? "ok" : "unavailable", "checks", checks));
    return true;
}
