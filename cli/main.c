/* donkey: the command-line tool. Everything is in dk_cli_main() (cli.c). */
#include "cli.h"

int main(int argc, char **argv)
{
    return dk_cli_main(argc, argv);
}
