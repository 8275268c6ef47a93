/* bare_h2o: the library's own ceiling. A minimal libh2o-evloop HTTP/1.1 server
 * (one thread) answering POST /conf.echo like donkey's conf.echo: parse the
 * JSON body with jansson, check the same rules by hand (name: string of 1..100
 * characters, required; n: integer >= 0, default 0; tags: array of at most 5
 * strings, default []; no other keys), answer {"message","n","tags"} or 400.
 * No request id, logging, routing table, middleware or schema engine.
 *
 *   bare_h2o PORT */
#include <h2o.h>
#include <jansson.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static int valid_echo(json_t *in)
{
    if (!json_is_object(in))
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        if (strcmp(key, "name") == 0) {
            if (!json_is_string(v))
                return 0;
            /* length in characters (code points) */
            size_t chars = 0;
            const unsigned char *s = (const unsigned char *)json_string_value(v);
            for (; *s; s++)
                chars += (*s & 0xC0) != 0x80;
            if (chars < 1 || chars > 100)
                return 0;
        } else if (strcmp(key, "n") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return 0;
        } else if (strcmp(key, "tags") == 0) {
            if (!json_is_array(v) || json_array_size(v) > 5)
                return 0;
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t) {
                if (!json_is_string(t))
                    return 0;
            }
        } else {
            return 0;
        }
    }
    if (json_object_get(in, "name") == NULL)
        return 0;
    if (json_object_get(in, "n") == NULL)
        json_object_set_new(in, "n", json_integer(0));
    if (json_object_get(in, "tags") == NULL)
        json_object_set_new(in, "tags", json_array());
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) ||
        !h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/conf.echo")))
        return -1;
    json_t *in = json_loadb(req->entity.base, req->entity.len, 0, NULL);
    char *body = NULL;
    if (in != NULL && valid_echo(in)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "hello %s", json_string_value(json_object_get(in, "name")));
        json_t *out = json_pack("{s:s, s:O, s:O}", "message", msg, "n", json_object_get(in, "n"),
                                "tags", json_object_get(in, "tags"));
        body = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        req->res.status = 200;
        req->res.reason = "OK";
    } else {
        body = strdup("{\"error\":\"BAD_REQUEST\",\"message\":\"Validation Failed\"}");
        req->res.status = 400;
        req->res.reason = "Bad Request";
    }
    json_decref(in);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    req->res.content_length = strlen(body);
    h2o_send_inline(req, body, strlen(body));
    free(body);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(&accept_ctx, sock);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 3001;
    signal(SIGPIPE, SIG_IGN);
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")),
                                                    65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;

    h2o_context_init(&ctx, h2o_evloop_create(), &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;

    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0) {
        perror("bare_h2o: listen");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_socket_t *listener = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return 0;
}
