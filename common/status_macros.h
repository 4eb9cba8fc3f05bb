// Local status propagation macros. Debian's Abseil (20220623) ships none.
//
//   RETURN_IF_ERROR(expr);             // returns the status if not ok
//   ASSIGN_OR_RETURN(auto x, expr);    // unwraps a StatusOr or returns
//
// Swallowing an error must be explicit: use IgnoreError(status) so that it is
// greppable.
#ifndef MNEMO_COMMON_STATUS_MACROS_H_
#define MNEMO_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MNEMO_CONCAT_INNER_(a, b) a##b
#define MNEMO_CONCAT_(a, b) MNEMO_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status mnemo_status_ = (expr);         \
    if (!mnemo_status_.ok()) return mnemo_status_; \
  } while (0)

#define MNEMO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  MNEMO_ASSIGN_OR_RETURN_IMPL_(MNEMO_CONCAT_(mnemo_statusor_, __LINE__), lhs, expr)

namespace mnemo {

// Marks a status as deliberately ignored.
inline void IgnoreError(const absl::Status&) {}

// Prefixes a status message with context, keeping the code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace mnemo

#endif  // MNEMO_COMMON_STATUS_MACROS_H_
