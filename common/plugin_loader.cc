// dlopen() of mnemo's modules from candidate paths (see plugin_loader.h).
#include "common/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mnemo {

std::vector<std::string> PluginCandidatePaths(const char* env_var, const char* build_path,
                                              const std::string& file_name) {
  std::vector<std::string> out;
  // The build path is often also the one next to the executable.
  auto add = [&out](std::string path) {
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(std::move(path));
  };
  const char* env = env_var == nullptr ? nullptr : std::getenv(env_var);
  if (env != nullptr && *env != '\0') add(env);
  if (build_path != nullptr && *build_path != '\0') add(build_path);
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    add((exe.parent_path() / file_name).string());
    add((exe.parent_path().parent_path() / "lib" / file_name).string());
  }
  return out;
}

absl::StatusOr<LoadedPlugin> LoadPlugin(const std::string& what,
                                        const std::vector<std::string>& candidates,
                                        const char* symbol) {
  std::string tried;
  auto note = [&tried](const std::string& path, const std::string& why) {
    absl::StrAppend(&tried, tried.empty() ? "" : ", ", path, " (", why, ")");
  };
  for (const std::string& path : candidates) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      note(path, "missing");
      continue;
    }
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      note(path, why != nullptr ? why : "dlopen failed");
      continue;
    }
    void* entry = ::dlsym(handle, symbol);
    if (entry == nullptr) {
      note(path, absl::StrCat("no ", symbol));
      ::dlclose(handle);
      continue;
    }
    return LoadedPlugin{path, handle, entry};
  }
  return absl::FailedPreconditionError(
      absl::StrCat(what, " was not found or not loadable: ",
                   tried.empty() ? "no candidate path" : tried));
}

}  // namespace mnemo
