#include "index/dense_factory.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mnemo::index {
namespace {

absl::StatusOr<uint32_t> ParseBounded(absl::string_view what, absl::string_view text,
                                      uint32_t lo, uint32_t hi) {
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be an integer in [", lo, ", ", hi, "], got '", text, "'"));
  }
  return value;
}

}  // namespace

absl::StatusOr<DenseFactory> ParseDenseFactory(absl::string_view factory) {
  DenseFactory out;
  std::vector<absl::string_view> faiss_parts;
  bool has_options = false;
  for (absl::string_view part : absl::StrSplit(factory, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, "efC=")) {
      auto v = ParseBounded("efC", part, 1, kMaxHnswEf);
      if (!v.ok()) return v.status();
      out.ef_construction = *v;
      has_options = true;
    } else if (absl::ConsumePrefix(&part, "ef=")) {
      auto v = ParseBounded("ef", part, 1, kMaxHnswEf);
      if (!v.ok()) return v.status();
      out.ef_search = *v;
      has_options = true;
    } else if (absl::StrContains(part, '=')) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown index option '", part, "' (known: efC=, ef=)"));
    } else {
      faiss_parts.push_back(part);
    }
  }
  out.faiss = absl::StrJoin(faiss_parts, ",");
  if (out.faiss.empty()) out.faiss = "Flat";

  // M of the first HNSW component ("HNSW32", "HNSW32_PQ16"...), if any.
  for (absl::string_view part : faiss_parts) {
    absl::string_view rest = part;
    if (!absl::ConsumePrefix(&rest, "HNSW")) continue;
    const size_t digits = rest.find_first_not_of("0123456789");
    const absl::string_view m = rest.substr(0, digits);
    if (m.empty()) break;
    auto v = ParseBounded("HNSW M", m, 2, kMaxHnswM);
    if (!v.ok()) return v.status();
    out.hnsw_m = *v;
    break;
  }
  if (has_options && out.hnsw_m == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("efC= and ef= apply to HNSW factories only, not '", out.faiss, "'"));
  }
  out.native_hnsw =
      out.hnsw_m != 0 &&
      (faiss_parts.size() == 1 || (faiss_parts.size() == 2 && faiss_parts[1] == "Flat")) &&
      faiss_parts[0] == absl::StrCat("HNSW", out.hnsw_m);
  return out;
}

}  // namespace mnemo::index
