// mnemo: the admin CLI of a mnemod server. See `mnemo --help`.
#include "client/cli/cli.h"

int main(int argc, char** argv) { return mnemo::cli::RunCli(argc, argv); }
