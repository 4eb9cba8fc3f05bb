// mnemo-decode: the reference decoder's CLI. See `mnemo-decode --help`.
#include "decoder/cli.h"

int main(int argc, char** argv) { return mnemo::decoder::cli::RunDecodeCli(argc, argv); }
