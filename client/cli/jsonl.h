// The JSONL record format of `mnemo upsert` and its parser.
//
// One JSON object per line. A chunk:
//   {"id": "c1", "document_id": "d1", "text": "...", "metadata": {...},
//    "vector": [0.1, 0.2, ...]}
// A document (the line carries "type": "document"):
//   {"type": "document", "id": "d1", "text": "...", "metadata": {...}}
// "id" is required (a string, or an integer that is converted to one);
// every other field is optional (a chunk without "vector" is sent as is and
// the server decides). Blank lines are skipped by the caller.
#ifndef MNEMO_CLIENT_CLI_JSONL_H_
#define MNEMO_CLIENT_CLI_JSONL_H_

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mnemo/client.h"

namespace mnemo::cli {

// One parsed line: a document or a chunk.
using Record = std::variant<Document, Chunk>;

// Parses one non-blank line. `expected_dim` > 0 makes a chunk whose vector
// has another length an error. INVALID_ARGUMENT with a message that does not
// name the line (the caller prefixes "file:line").
[[nodiscard]] absl::StatusOr<Record> ParseRecordLine(absl::string_view line,
                                                     uint32_t expected_dim);

// Parses a JSON array of numbers ("[0.1, 2, -3e-2]") into floats.
// INVALID_ARGUMENT when it is anything else or empty.
[[nodiscard]] absl::StatusOr<std::vector<float>> ParseVectorJson(absl::string_view json);

// True when the line holds only whitespace.
bool IsBlankLine(absl::string_view line);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_JSONL_H_
