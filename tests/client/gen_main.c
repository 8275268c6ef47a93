/* Test driver for the client generator until the donkey CLI calls it:
 *   dk_gen_client_test ROUTES.json OUT_DIR [--force]
 * ROUTES.json is what a server prints with --routes-json ("-" = stdin). */
#include "gen_client.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--force") != 0)) {
        fprintf(stderr, "usage: %s ROUTES.json OUT_DIR [--force]\n", argv[0]);
        return 2;
    }
    json_error_t jerr;
    json_t *doc = strcmp(argv[1], "-") == 0 ? json_loadf(stdin, 0, &jerr)
                                             : json_load_file(argv[1], 0, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "%s: %s (line %d)\n", argv[1], jerr.text, jerr.line);
        return 1;
    }
    char err[512] = "";
    int rc = dk_cli_generate_client(doc, argv[2], argc == 4, err, sizeof err);
    json_decref(doc);
    if (rc != 0) {
        fprintf(stderr, "generate client: %s\n", err);
        return 1;
    }
    return 0;
}
