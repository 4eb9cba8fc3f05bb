// The `mnemo-decode` CLI: generate (with --memory or --inject), score, prefill
// (KV export) and attn-stats.
// See `mnemo-decode --help` and README "Reference decoder".
#ifndef MNEMO_DECODER_CLI_H_
#define MNEMO_DECODER_CLI_H_

namespace mnemo::decoder::cli {

// Exit codes: 0 success, 1 error ("error: <CODE>: <message>" on stderr),
// 2 usage error.
int RunDecodeCli(int argc, char** argv);

}  // namespace mnemo::decoder::cli

#endif  // MNEMO_DECODER_CLI_H_
