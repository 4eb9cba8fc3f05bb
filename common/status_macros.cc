// Local status propagation macros (see status_macros.h).
#include "common/status_macros.h"

#include "absl/strings/str_cat.h"

namespace mnemo {

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace mnemo
