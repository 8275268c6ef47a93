/* Client-IP extraction from forwarding headers and CIDR matching. Pure
 * functions: the HTTP layer supplies the peer address and a header lookup. */
#include "donkey/ratelimit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* Longest textual address we look at ("ffff:...:255.255.255.255" is 45). */
#define ADDR_MAX 64

/* Copies `s` (length `n`) without surrounding blanks into `buf`; false if too long or empty. */
static bool trimmed(const char *s, size_t n, char buf[ADDR_MAX])
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= ADDR_MAX)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return true;
}

/* Parses an address into 16 bytes, IPv4 as IPv4-mapped IPv6. */
static bool parse_addr(const char *text, unsigned char out[16])
{
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, text, out) == 1;
}

bool dk_ip_valid(const char *text)
{
    unsigned char a[16];
    return text != NULL && parse_addr(text, a);
}

static int put(const char *value, char *out, size_t outlen)
{
    size_t n = strlen(value);
    if (n >= outlen) {
        out[0] = '\0';
        return DK_ELIMIT;
    }
    memcpy(out, value, n + 1);
    return 0;
}

/* The whole value of a single-address header, if valid. */
static bool header_addr(dk_header_fn get, void *u, const char *name, char buf[ADDR_MAX])
{
    const char *v = get(u, name);
    return v != NULL && trimmed(v, strlen(v), buf) && dk_ip_valid(buf);
}

static const char *const single_headers[] = {"CF-Connecting-IP", "True-Client-IP", "X-Real-IP"};

static int finish_with_peer(const char *peer_ip, char *out, size_t outlen)
{
    char buf[ADDR_MAX];
    if (peer_ip && trimmed(peer_ip, strlen(peer_ip), buf) && dk_ip_valid(buf))
        return put(buf, out, outlen);
    return put("unknown", out, outlen);
}

int dk_client_ip(const char *peer_ip, bool peer_trusted, dk_header_fn get_header, void *u,
                 char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return DK_EINVAL;
    char buf[ADDR_MAX];
    if (peer_trusted && get_header != NULL) {
        for (size_t i = 0; i < sizeof(single_headers) / sizeof(single_headers[0]); i++)
            if (header_addr(get_header, u, single_headers[i], buf))
                return put(buf, out, outlen);
        const char *xff = get_header(u, "X-Forwarded-For");
        if (xff != NULL) {
            const char *comma = strchr(xff, ',');
            size_t n = comma ? (size_t)(comma - xff) : strlen(xff);
            if (trimmed(xff, n, buf) && dk_ip_valid(buf))
                return put(buf, out, outlen);
        }
    }
    return finish_with_peer(peer_ip, out, outlen);
}

static bool is_trusted(const char *const *trusted, const char *ip)
{
    for (const char *const *c = trusted; c && *c; c++)
        if (dk_cidr_match(*c, ip) == 1)
            return true;
    return false;
}

int dk_client_ip_resolve(const char *peer_ip, const char *const *trusted, const char *ip_header,
                         dk_header_fn get_header, void *u, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return DK_EINVAL;
    char peer[ADDR_MAX];
    bool peer_ok = peer_ip && trimmed(peer_ip, strlen(peer_ip), peer) && dk_ip_valid(peer);
    if (!peer_ok || !is_trusted(trusted, peer) || get_header == NULL)
        return finish_with_peer(peer_ip, out, outlen);
    char buf[ADDR_MAX];
    if (ip_header != NULL && *ip_header != '\0' && header_addr(get_header, u, ip_header, buf))
        return put(buf, out, outlen);
    const char *xff = get_header(u, "X-Forwarded-For");
    if (xff != NULL) {
        /* Walk from the right: entries appended by our own proxies are trusted; the
         * first address they did not vouch for is the client. Everything left of
         * it was written by the client and is ignored. */
        const char *end = xff + strlen(xff);
        char leftmost[ADDR_MAX] = "";
        while (end > xff) {
            const char *start = end;
            while (start > xff && start[-1] != ',')
                start--;
            if (!trimmed(start, (size_t)(end - start), buf) || !dk_ip_valid(buf))
                break; /* garbage: nothing further left can be trusted */
            if (!is_trusted(trusted, buf))
                return put(buf, out, outlen);
            strcpy(leftmost, buf);
            end = start > xff ? start - 1 : xff;
        }
        if (leftmost[0] != '\0' && end == xff)
            return put(leftmost, out, outlen);
    }
    return finish_with_peer(peer_ip, out, outlen);
}

int dk_client_ip_trusted(const char *peer_ip, const char *const *trusted, dk_header_fn get_header,
                         void *u, char *out, size_t outlen)
{
    return dk_client_ip_resolve(peer_ip, trusted, NULL, get_header, u, out, outlen);
}

int dk_cidr_match(const char *cidr, const char *ip)
{
    if (cidr == NULL || ip == NULL)
        return 0;
    char net[ADDR_MAX], addr[ADDR_MAX];
    const char *slash = strchr(cidr, '/');
    size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
    if (!trimmed(cidr, n, net) || !trimmed(ip, strlen(ip), addr))
        return 0;
    unsigned char a[16], b[16];
    if (!parse_addr(net, a) || !parse_addr(addr, b))
        return 0;
    bool v4 = strchr(net, ':') == NULL;
    long bits = v4 ? 32 : 128;
    if (slash) {
        char *endp;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9')
            return 0;
        bits = strtol(p, &endp, 10);
        if (*endp != '\0' || bits > (v4 ? 32 : 128))
            return 0;
    }
    /* IPv4 networks were mapped into ::ffff:0:0/96, so their prefix grows by 96. */
    if (v4)
        bits += 96;
    for (long i = 0; i < bits / 8; i++)
        if (a[i] != b[i])
            return 0;
    if (bits % 8) {
        unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
        if ((a[bits / 8] & mask) != (b[bits / 8] & mask))
            return 0;
    }
    return 1;
}
