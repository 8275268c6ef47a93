/* Kore peer for bench/compare: POST /conf.echo with the rules of donkey's
 * conf.echo (name: string 1..100 characters, required; n: integer >= 0,
 * default 0; tags: array of at most 5 strings, default []; no other keys).
 * Answers {"message":"hello <name>","n":n,"tags":[...]} or 400. Built as a
 * shared object loaded by Debian's `kore` binary (see bench/compare). */
#include <kore/kore.h>
#include <kore/http.h>

#include <string.h>

int echo(struct http_request *);

static void bad(struct http_request *req)
{
	static const char msg[] = "{\"error\":\"BAD_REQUEST\",\"message\":\"Validation Failed\"}";

	http_response_header(req, "content-type", "application/json");
	http_response(req, 400, msg, sizeof(msg) - 1);
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static void put_string(struct kore_buf *b, const char *s)
{
	kore_buf_append(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			kore_buf_append(b, "\\", 1);
			kore_buf_append(b, s, 1);
		} else if (c < 0x20) {
			kore_buf_appendf(b, "\\u%04x", c);
		} else {
			kore_buf_append(b, s, 1);
		}
	}
	kore_buf_append(b, "\"", 1);
}

static int integral(struct kore_json_item *it, long long *out)
{
	if (it->type == KORE_JSON_TYPE_INTEGER) {
		*out = it->data.s64;
		return 1;
	}
	if (it->type == KORE_JSON_TYPE_INTEGER_U64) {
		*out = (long long)it->data.u64;
		return it->data.u64 <= (u_int64_t)INT64_MAX;
	}
	if (it->type == KORE_JSON_TYPE_NUMBER && it->data.number == (double)(long long)it->data.number) {
		*out = (long long)it->data.number;
		return 1;
	}
	return 0;
}

int echo(struct http_request *req)
{
	struct kore_json json;
	struct kore_json_item *it, *name = NULL, *tags = NULL, *t;
	struct kore_buf out;
	long long n = 0;
	char body[16384];
	ssize_t len;
	int ntags = 0;

	if (req->method != HTTP_METHOD_POST) {
		http_response(req, 405, NULL, 0);
		return KORE_RESULT_OK;
	}
	len = http_body_read(req, body, sizeof(body));
	if (len <= 0) {
		bad(req);
		return KORE_RESULT_OK;
	}
	kore_json_init(&json, body, (size_t)len);
	if (!kore_json_parse(&json) || json.root->type != KORE_JSON_TYPE_OBJECT)
		goto invalid;
	TAILQ_FOREACH(it, &json.root->data.items, list) {
		if (strcmp(it->name, "name") == 0) {
			size_t c;
			if (it->type != KORE_JSON_TYPE_STRING)
				goto invalid;
			c = utf8_chars(it->data.string);
			if (c < 1 || c > 100)
				goto invalid;
			name = it;
		} else if (strcmp(it->name, "n") == 0) {
			if (!integral(it, &n) || n < 0)
				goto invalid;
		} else if (strcmp(it->name, "tags") == 0) {
			if (it->type != KORE_JSON_TYPE_ARRAY)
				goto invalid;
			ntags = 0;
			TAILQ_FOREACH(t, &it->data.items, list) {
				if (t->type != KORE_JSON_TYPE_STRING || ++ntags > 5)
					goto invalid;
			}
			tags = it;
		} else {
			goto invalid;
		}
	}
	if (name == NULL)
		goto invalid;

	kore_buf_init(&out, 256);
	kore_buf_appendf(&out, "{\"message\":");
	{
		/* "hello <name>" as one JSON string */
		struct kore_buf m;
		kore_buf_init(&m, 128);
		kore_buf_appendf(&m, "hello %s", name->data.string);
		kore_buf_append(&m, "", 1);
		put_string(&out, (const char *)m.data);
		kore_buf_cleanup(&m);
	}
	kore_buf_appendf(&out, ",\"n\":%lld,\"tags\":[", n);
	if (tags != NULL) {
		int first = 1;
		TAILQ_FOREACH(t, &tags->data.items, list) {
			if (!first)
				kore_buf_append(&out, ",", 1);
			put_string(&out, t->data.string);
			first = 0;
		}
	}
	kore_buf_append(&out, "]}", 2);
	http_response_header(req, "content-type", "application/json");
	http_response(req, 200, out.data, out.offset);
	kore_buf_cleanup(&out);
	kore_json_cleanup(&json);
	return KORE_RESULT_OK;

invalid:
	kore_json_cleanup(&json);
	bad(req);
	return KORE_RESULT_OK;
}
