// The property the KV codec fuzzer checks, shared by the libFuzzer target
// (kv_codec_fuzz.cc) and the corpus regression test that CI runs with g++
// (kv_codec_corpus_test.cc).
#ifndef MNEMO_TESTS_FUZZ_KV_CODEC_FUZZ_H_
#define MNEMO_TESTS_FUZZ_KV_CODEC_FUZZ_H_

#include <string>

#include "absl/strings/string_view.h"

namespace mnemo::fuzz {

// Runs `data`, and `data` with its checksums recomputed (so that mutated
// header fields and payloads get past them), through PeekKvTensor,
// DecodeKvTensor and DecodeKvPayload. Every input must either be refused
// with DATA_LOSS ("corrupt KV block: ...", empty output) by all of them, or
// decode to finite values of the header's shape that re-encode: the
// re-encoded block decodes again, to the same values for the lossless
// kinds, and its stored error is the recomputed one. Returns "" when that
// holds, else what went wrong.
std::string CheckKvCodecInput(absl::string_view data);

}  // namespace mnemo::fuzz

#endif  // MNEMO_TESTS_FUZZ_KV_CODEC_FUZZ_H_
