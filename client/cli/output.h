// Where a `mnemo` CLI verb writes its result, and the few helpers every verb
// uses to write it (text for people, one JSON document with --json, byte
// counts in binary units).
#ifndef MNEMO_CLIENT_CLI_OUTPUT_H_
#define MNEMO_CLIENT_CLI_OUTPUT_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "nlohmann/json_fwd.hpp"

namespace mnemo::cli {

// Where verbs write. Borrowed streams.
struct Output {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  bool json = false;
};

// Writes `text` as is to out.out.
void Print(const Output& out, const std::string& text);

// Writes `value` to out.out, indented by two, with a final newline.
void PrintJson(const Output& out, const nlohmann::json& value);

// "512 B", "1.5 KiB", ... "3.0 TiB" (one decimal above bytes).
std::string HumanBytes(uint64_t bytes);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_OUTPUT_H_
