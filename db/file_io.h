// Crash-safe whole-file I/O for the index snapshot files: atomic replace
// (temp file, fsync, rename, fsync of the directory) and whole-file read.
// Internal to db/.
#ifndef MNEMO_DB_FILE_IO_H_
#define MNEMO_DB_FILE_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mnemo::db {

// Writes `data` to `path` so that a crash leaves either the old file or the
// complete new one. INTERNAL naming the failed system call otherwise.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);

// The whole file; NOT_FOUND when it cannot be opened, DATA_LOSS when it
// cannot be read.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace mnemo::db

#endif  // MNEMO_DB_FILE_IO_H_
