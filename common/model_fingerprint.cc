// The model fingerprint: canonical form, hash, parsing and the first
// differing field (mnemo/model_fingerprint.h).
#include "mnemo/model_fingerprint.h"

#include <charconv>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/hash.h"

namespace mnemo {
namespace {

std::string DoubleString(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip
  return std::string(buf, r.ptr);
}

// The fields in canonical order, as (name, value) strings.
std::vector<std::pair<std::string, std::string>> Fields(const ModelFingerprint& f) {
  return {{"architecture", f.architecture},
          {"n_layers", absl::StrCat(f.n_layers)},
          {"n_heads", absl::StrCat(f.n_heads)},
          {"n_kv_heads", absl::StrCat(f.n_kv_heads)},
          {"head_dim", absl::StrCat(f.head_dim)},
          {"dim", absl::StrCat(f.dim)},
          {"rope_theta", DoubleString(f.rope_theta)},
          {"rope_style", f.rope_style},
          {"dtype", f.dtype},
          {"tokenizer_sha256", f.tokenizer_sha256}};
}

}  // namespace

std::string ModelFingerprint::Canonical() const {
  std::string out;
  for (const auto& [name, value] : Fields(*this)) {
    absl::StrAppend(&out, out.empty() ? "" : ";", name, "=", value);
  }
  return out;
}

uint64_t ModelFingerprint::Hash() const { return Fnv1a(Canonical(), kFnv1aStandardBasis); }

std::string ModelFingerprint::HashHex() const { return absl::StrFormat("%016x", Hash()); }

absl::StatusOr<ModelFingerprint> ParseFingerprint(const std::string& canonical) {
  ModelFingerprint f;
  std::set<std::string> seen;
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("bad model fingerprint: ", why));
  };
  for (absl::string_view part : absl::StrSplit(canonical, ';')) {
    const size_t eq = part.find('=');
    if (eq == absl::string_view::npos) return bad(absl::StrCat("\"", part, "\" has no '='"));
    const std::string key(part.substr(0, eq));
    const std::string value(part.substr(eq + 1));
    if (!seen.insert(key).second) return bad(absl::StrCat("field ", key, " repeated"));
    int* int_field = key == "n_layers"     ? &f.n_layers
                     : key == "n_heads"    ? &f.n_heads
                     : key == "n_kv_heads" ? &f.n_kv_heads
                     : key == "head_dim"   ? &f.head_dim
                     : key == "dim"        ? &f.dim
                                           : nullptr;
    if (int_field != nullptr) {
      if (!absl::SimpleAtoi(value, int_field)) return bad(absl::StrCat(key, " is not an integer"));
    } else if (key == "rope_theta") {
      if (!absl::SimpleAtod(value, &f.rope_theta)) return bad("rope_theta is not a number");
    } else if (key == "architecture") {
      f.architecture = value;
    } else if (key == "rope_style") {
      f.rope_style = value;
    } else if (key == "dtype") {
      f.dtype = value;
    } else if (key == "tokenizer_sha256") {
      f.tokenizer_sha256 = value;
    } else {
      return bad(absl::StrCat("unknown field ", key));
    }
  }
  for (const auto& [name, value] : Fields(f)) {
    if (!seen.count(name)) return bad(absl::StrCat("field ", name, " missing"));
  }
  return f;
}

std::string FingerprintDiff::ToString() const {
  return absl::StrCat(field, ": expected ", expected, ", got ", actual);
}

std::optional<FingerprintDiff> FirstDifference(const ModelFingerprint& expected,
                                               const ModelFingerprint& actual) {
  const auto a = Fields(expected), b = Fields(actual);
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].second != b[i].second) return FingerprintDiff{a[i].first, a[i].second, b[i].second};
  }
  return std::nullopt;
}

}  // namespace mnemo
