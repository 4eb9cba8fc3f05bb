// Output helpers shared by every `mnemo` CLI verb (see output.h).
#include "client/cli/output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {

void Print(const Output& out, const std::string& text) { std::fputs(text.c_str(), out.out); }

void PrintJson(const Output& out, const nlohmann::json& value) {
  Print(out, value.dump(2) + "\n");
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.1f %s", value, units[unit]);
}

}  // namespace mnemo::cli
