// Loading a dlopen()ed module of mnemo: the text plugin of the store
// (db/text.h) and the decoder's tokenizer plugin (decoder/tokenizer.h).
// Both exist to keep Debian's libsentencepiece, which bundles its own
// protobuf-lite, out of the global symbol scope of a process that links
// libprotobuf. A module is opened with dlopen(RTLD_NOW | RTLD_LOCAL |
// RTLD_DEEPBIND): it and its dependencies resolve their symbols among
// themselves first and add none to the global scope.
//
// Not thread-safe by itself: callers load once under their own lock, and
// never dlclose (objects made by a module outlive the caller's scope).
#ifndef MNEMO_COMMON_PLUGIN_LOADER_H_
#define MNEMO_COMMON_PLUGIN_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mnemo {

// The paths at which to look for the module file `file_name`, in lookup
// order: $`env_var` when set and not empty, `build_path` (the module's
// path in the build tree, baked in at compile time) when not null or
// empty, then next to the running executable and in ../lib from it (an
// installed layout). Each path appears once.
std::vector<std::string> PluginCandidatePaths(const char* env_var, const char* build_path,
                                              const std::string& file_name);

struct LoadedPlugin {
  std::string path;        // the candidate that loaded
  void* handle = nullptr;  // from dlopen; never closed by the caller
  void* symbol = nullptr;  // the entry point
};

// Opens the first of `candidates` that exists, loads and exports `symbol`.
// FAILED_PRECONDITION naming `what` and every path tried with why it was
// skipped (missing, the dlerror() text, or no such symbol) when none does.
absl::StatusOr<LoadedPlugin> LoadPlugin(const std::string& what,
                                        const std::vector<std::string>& candidates,
                                        const char* symbol);

}  // namespace mnemo

#endif  // MNEMO_COMMON_PLUGIN_LOADER_H_
