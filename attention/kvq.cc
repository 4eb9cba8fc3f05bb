// kvq: non-uniform, outlier-aware KV quantization with rANS (see kvq.h).
#include "attention/kvq.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "attention/kv_quant.h"
#include "attention/rans.h"
#include "common/varint.h"

namespace mnemo::attention {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the kvq payload is stored in host order, little-endian");

absl::Status Bad(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("kvq payload: ", what));
}

bool HalfFinite(uint16_t h) { return (h & 0x7c00) != 0x7c00; }

// The smallest fp16 >= v (v >= 0, within fp16 range).
uint16_t HalfAtLeast(float v) {
  uint16_t h = FloatToHalfBits(v);
  if (HalfBitsToFloat(h) < v) h = static_cast<uint16_t>(h + 1);  // v >= 0: next up
  return h;
}

// A line's scale from the tensor's top scale and the line's 8-bit step
// count: fp16(top * 2^(-q/8)), 0 for q = 255.
uint16_t LineScaleBits(float top, uint8_t q) {
  if (q == kKvqZeroScale) return 0;
  return FloatToHalfBits(static_cast<float>(top * std::exp2(-q / 8.0)));
}

// The decode of one dense code: one fp32 multiply, then one fp32 add (two
// statements, no FMA on the default x86-64 target; the CUDA kernel uses
// __fmul_rn / __fadd_rn).
inline float DecodeCode(float level, float scale, float offset) {
  const float y = level * scale;
  return y + offset;
}

// Flat element index of code k of dense line `line`.
inline uint64_t ElementOf(const KvqSpec& s, uint64_t line, uint64_t k) {
  const uint64_t dense_tokens = s.tokens - s.sink_tokens;
  if (s.keys) {
    const uint64_t h = line / s.head_dim, c = line % s.head_dim;
    return (h * s.tokens + s.sink_tokens + k) * s.head_dim + c;
  }
  const uint64_t h = line / dense_tokens, tt = line % dense_tokens;
  return (h * s.tokens + s.sink_tokens + tt) * s.head_dim + k;
}

void PutU16(std::string* out, uint16_t v) { out->append(reinterpret_cast<const char*>(&v), 2); }
void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

// Code lengths in bits of clusters with these counts (infinite for empty
// ones).
std::vector<double> CodeLengths(const std::vector<uint64_t>& cnt) {
  uint64_t total = 0;
  for (uint64_t c : cnt) total += c;
  std::vector<double> len(cnt.size(), std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < cnt.size(); ++i) {
    if (cnt[i] > 0) len[i] = -std::log2(static_cast<double>(cnt[i]) / static_cast<double>(total));
  }
  return len;
}

// The level minimizing (u - level)^2 + rate_weight * bits(level).
inline int NearestByCost(float u, const std::vector<double>& c, const std::vector<double>& bits,
                         double rate_weight) {
  int best = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < c.size(); ++k) {
    const double cost = (u - c[k]) * (u - c[k]) + rate_weight * bits[k];
    if (cost < best_cost) {
      best_cost = cost;
      best = static_cast<int>(k);
    }
  }
  return best;
}

// 1-D k-means (Lloyd) of `sample` (sorted) into n levels, initialized at
// the quantiles. Empty clusters keep their level. rate_weight > 0 makes it
// entropy-constrained (Chou, Lookabaugh and Gray): a value joins the level
// minimizing squared error + rate_weight * code length, so rarely used
// levels (the tails) cost what the entropy coder will charge for them.
// Returns the levels and, for the entropy-constrained case, their code
// lengths (*bits; all 0 otherwise).
std::vector<float> KMeansLevels(std::vector<float> sample, int n, double rate_weight,
                                std::vector<double>* bits) {
  bits->assign(n, 0.0);
  std::vector<double> c(n);
  if (sample.empty()) {
    for (int i = 0; i < n; ++i) c[i] = n == 1 ? 0.0 : -1.0 + 2.0 * i / (n - 1);
  } else {
    std::sort(sample.begin(), sample.end());
    for (int i = 0; i < n; ++i) {
      c[i] = sample[std::min(sample.size() - 1,
                             static_cast<size_t>((i + 0.5) / n * sample.size()))];
    }
    for (int iter = 0; iter < 20; ++iter) {
      std::sort(c.begin(), c.end());
      std::vector<double> sum(n, 0);
      std::vector<uint64_t> cnt(n, 0);
      if (rate_weight > 0) {
        for (float u : sample) {
          const int k = NearestByCost(u, c, *bits, rate_weight);
          sum[k] += u;
          ++cnt[k];
        }
      } else {
        int k = 0;
        for (float u : sample) {  // sample sorted: the nearest level only moves up
          while (k + 1 < n && std::abs(u - c[k + 1]) <= std::abs(u - c[k])) ++k;
          sum[k] += u;
          ++cnt[k];
        }
      }
      if (rate_weight > 0) *bits = CodeLengths(cnt);
      bool moved = false;
      for (int i = 0; i < n; ++i) {
        if (cnt[i] == 0) continue;
        const double m = sum[i] / cnt[i];
        moved |= std::abs(m - c[i]) > 1e-7;
        c[i] = m;
      }
      if (!moved) break;
    }
  }
  // Sorted by level, code lengths following.
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&c](int a, int b) { return c[a] < c[b]; });
  std::vector<float> out(n);
  std::vector<double> sorted_bits(n);
  for (int i = 0; i < n; ++i) {
    out[i] = HalfBitsToFloat(FloatToHalfBits(static_cast<float>(c[order[i]])));
    sorted_bits[i] = (*bits)[order[i]];
  }
  *bits = std::move(sorted_bits);
  return out;
}

}  // namespace

uint64_t KvqPackedBytes(uint64_t n, int bits) {
  const uint64_t bytes = (n * static_cast<uint64_t>(bits) + 7) / 8;
  return (bytes + 3) / 4 * 4 + 4;
}

absl::Status ValidateKvqOptions(const KvqOptions& o) {
  if (o.bits < 1 || o.bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("kvq bits must be in [1, 8], got ", o.bits));
  }
  if (!(o.rate_weight >= 0 && o.rate_weight <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kvq rate weight must be in [0, 1], got ", o.rate_weight));
  }
  if (!(o.outlier_fraction >= 0 && o.outlier_fraction <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kvq outlier fraction must be in [0, 0.5], got ", o.outlier_fraction));
  }
  return absl::OkStatus();
}

absl::Status EncodeKvq(absl::Span<const float> x, uint32_t heads, uint32_t tokens,
                       uint32_t head_dim, bool keys, const KvqOptions& options,
                       std::string* payload) {
  if (absl::Status s = ValidateKvqOptions(options); !s.ok()) return s;
  KvqSpec s;
  s.heads = heads;
  s.tokens = tokens;
  s.head_dim = head_dim;
  s.keys = keys;
  s.bits = options.bits;
  s.sink_tokens = std::min(options.sink_tokens, tokens);
  if (heads == 0 || tokens == 0 || head_dim == 0 || uint64_t{heads} * tokens > kKvqMaxElements ||
      s.elements() > kKvqMaxElements) {
    return absl::InvalidArgumentError(
        absl::StrCat("kvq shape [", heads, ", ", tokens, ", ", head_dim, "] is empty or too large"));
  }
  if (x.size() != s.elements()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kvq tensor has ", x.size(), " values, its shape ", s.elements()));
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || std::abs(x[i]) > kKvqMaxMagnitude) {
      return absl::InvalidArgumentError(
          absl::StrCat("x[", i, "] = ", x[i], " is not finite or beyond kvq's range"));
    }
  }
  const uint64_t lines = s.lines(), len = s.line_length(), dense = s.dense();
  const int n_levels = 1 << s.bits;

  // Outliers: the elements farthest from their line's mean, in units of
  // the line's standard deviation.
  std::vector<float> mean(lines, 0), inv_sd(lines, 0);
  for (uint64_t l = 0; l < lines; ++l) {
    double sum = 0, sq = 0;
    for (uint64_t k = 0; k < len; ++k) sum += x[ElementOf(s, l, k)];
    const double m = sum / static_cast<double>(len);
    for (uint64_t k = 0; k < len; ++k) {
      const double d = x[ElementOf(s, l, k)] - m;
      sq += d * d;
    }
    const double sd = std::sqrt(sq / static_cast<double>(len));
    mean[l] = static_cast<float>(m);
    inv_sd[l] = sd > 0 ? static_cast<float>(1 / sd) : 0.0f;
  }
  std::vector<uint8_t> outlier(x.size(), 0);
  const uint64_t n_out = static_cast<uint64_t>(options.outlier_fraction * static_cast<double>(dense));
  if (n_out > 0) {
    std::vector<std::pair<float, uint64_t>> dev;
    dev.reserve(dense);
    for (uint64_t l = 0; l < lines; ++l) {
      for (uint64_t k = 0; k < len; ++k) {
        const uint64_t e = ElementOf(s, l, k);
        dev.emplace_back(std::abs(x[e] - mean[l]) * inv_sd[l], e);
      }
    }
    std::nth_element(dev.begin(), dev.begin() + static_cast<ptrdiff_t>(n_out), dev.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (uint64_t i = 0; i < n_out; ++i) outlier[dev[i].second] = 1;
  }

  // Line parameters over the inliers: offsets in fp16, scales as 8-bit
  // steps of 2^(1/8) below the top scale, each rounded to at least the
  // line's half-range.
  std::vector<uint16_t> offset_h(keys ? lines : 0, 0);
  std::vector<uint8_t> scale_q(lines, kKvqZeroScale);
  std::vector<float> scale(lines, 0), offset(lines, 0), need(lines, 0);
  for (uint64_t l = 0; l < lines; ++l) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t e = ElementOf(s, l, k);
      if (outlier[e]) continue;
      lo = std::min(lo, x[e]);
      hi = std::max(hi, x[e]);
    }
    if (lo > hi) continue;  // no inliers: scale 0, offset 0
    if (keys) {
      offset_h[l] = FloatToHalfBits(0.5f * lo + 0.5f * hi);
      offset[l] = HalfBitsToFloat(offset_h[l]);
      need[l] = std::max(hi - offset[l], offset[l] - lo);
    } else {
      need[l] = std::max(std::abs(lo), std::abs(hi));
    }
  }
  float top_need = 0;
  for (float n : need) top_need = std::max(top_need, n);
  const uint16_t top_h = HalfAtLeast(top_need);
  const float top = HalfBitsToFloat(top_h);
  for (uint64_t l = 0; l < lines; ++l) {
    if (need[l] <= 0) continue;
    // In double: need / top >= 2^-149 / 65504, so the log is finite.
    const double steps = -8.0 * std::log2(static_cast<double>(need[l]) / top);
    int q = static_cast<int>(std::clamp(std::floor(steps), 0.0, kKvqZeroScale - 1.0));
    while (q > 0 && HalfBitsToFloat(LineScaleBits(top, static_cast<uint8_t>(q))) < need[l]) --q;
    scale_q[l] = static_cast<uint8_t>(q);
    scale[l] = HalfBitsToFloat(LineScaleBits(top, scale_q[l]));
  }

  // Levels: k-means of the normalized inliers (a strided sample of at most
  // 2^16).
  std::vector<float> sample;
  const uint64_t stride = std::max<uint64_t>(1, dense / 65536);
  uint64_t seen = 0;
  for (uint64_t l = 0; l < lines; ++l) {
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t e = ElementOf(s, l, k);
      if (outlier[e] || scale[l] == 0) continue;
      if (seen++ % stride == 0) sample.push_back((x[e] - offset[l]) / scale[l]);
    }
  }
  std::vector<double> code_bits;
  const double rate_weight = s.bits <= 6 ? options.rate_weight : 0.0;
  const std::vector<float> levels =
      KMeansLevels(std::move(sample), n_levels, rate_weight, &code_bits);
  std::vector<double> levels_d(levels.begin(), levels.end());

  // Codes: the level whose decoded value is nearest.
  std::vector<uint8_t> codes(dense, 0);
  std::vector<uint64_t> counts(n_levels, 0);
  for (uint64_t l = 0; l < lines; ++l) {
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t e = ElementOf(s, l, k);
      int q = 0;
      if (scale[l] > 0 && rate_weight > 0) {
        q = NearestByCost((x[e] - offset[l]) / scale[l], levels_d, code_bits, rate_weight);
      } else if (scale[l] > 0) {
        const float u = (x[e] - offset[l]) / scale[l];
        q = static_cast<int>(std::lower_bound(levels.begin(), levels.end(), u) - levels.begin());
        q = std::min(q, n_levels - 1);
        if (q > 0 && std::abs(DecodeCode(levels[q - 1], scale[l], offset[l]) - x[e]) <=
                         std::abs(DecodeCode(levels[q], scale[l], offset[l]) - x[e])) {
          --q;
        }
      }
      // A code must decode within kKvqMaxMagnitude (a scale rounded up and
      // a level at +-1 can overshoot a value near the limit): else the
      // in-range level nearest to x, else the element becomes an outlier.
      const auto decoded = [&](int j) { return DecodeCode(levels[j], scale[l], offset[l]); };
      if (!outlier[e] && !(std::abs(decoded(q)) <= kKvqMaxMagnitude)) {
        int best = -1;
        float best_err = std::numeric_limits<float>::infinity();
        for (int j = 0; j < n_levels; ++j) {
          const float d = decoded(j);
          if (std::abs(d) <= kKvqMaxMagnitude && std::abs(d - x[e]) < best_err) {
            best = j;
            best_err = std::abs(d - x[e]);
          }
        }
        if (best < 0) {
          outlier[e] = 1;
          best = 0;
        }
        q = best;
      }
      codes[l * len + k] = static_cast<uint8_t>(q);
      ++counts[q];
    }
  }
  const std::vector<uint16_t> freqs = QuantizeRansFrequencies(counts);
  std::string stream;
  RansEncode(codes, freqs, &stream);

  std::string positions;
  std::vector<uint16_t> outlier_values;
  uint64_t prev = 0;
  for (uint64_t e = 0; e < x.size(); ++e) {
    if (!outlier[e]) continue;
    PutVarint(&positions, outlier_values.empty() ? e : e - prev - 1);
    prev = e;
    outlier_values.push_back(FloatToHalfBits(x[e]));
  }
  if (positions.size() > UINT32_MAX || stream.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("kvq tensor too large for its payload");
  }

  payload->clear();
  payload->push_back(static_cast<char>(s.bits));
  payload->push_back(0);
  PutU16(payload, static_cast<uint16_t>(std::min<uint32_t>(s.sink_tokens, 0xffff)));
  if (s.sink_tokens > 0xffff) {
    return absl::InvalidArgumentError("kvq keeps at most 65535 sink tokens");
  }
  PutU32(payload, static_cast<uint32_t>(outlier_values.size()));
  PutU32(payload, static_cast<uint32_t>(positions.size()));
  PutU32(payload, static_cast<uint32_t>(stream.size()));
  for (float v : levels) PutU16(payload, FloatToHalfBits(v));
  for (uint16_t f : freqs) PutU16(payload, f);
  PutU16(payload, top_h);
  payload->append(reinterpret_cast<const char*>(scale_q.data()), scale_q.size());
  for (uint16_t v : offset_h) PutU16(payload, v);
  for (uint32_t h = 0; h < heads; ++h) {
    for (uint32_t t = 0; t < s.sink_tokens; ++t) {
      for (uint32_t c = 0; c < head_dim; ++c) {
        PutU16(payload, FloatToHalfBits(x[(uint64_t{h} * tokens + t) * head_dim + c]));
      }
    }
  }
  payload->append(positions);
  for (uint16_t v : outlier_values) PutU16(payload, v);
  payload->append(stream);
  return absl::OkStatus();
}

absl::StatusOr<KvqPlanes> ParseKvq(absl::string_view payload, uint32_t heads, uint32_t tokens,
                                   uint32_t head_dim, bool keys) {
  if (heads == 0 || tokens == 0 || head_dim == 0 || uint64_t{heads} * tokens > kKvqMaxElements ||
      uint64_t{heads} * tokens * head_dim > kKvqMaxElements) {
    return absl::InvalidArgumentError("kvq shape is empty or too large");
  }
  if (payload.size() < kKvqHeaderBytes) return Bad("shorter than its header");
  const auto* base = reinterpret_cast<const uint8_t*>(payload.data());
  uint16_t sinks16;
  uint32_t count, pos_bytes, stream_bytes;
  std::memcpy(&sinks16, base + 2, 2);
  std::memcpy(&count, base + 4, 4);
  std::memcpy(&pos_bytes, base + 8, 4);
  std::memcpy(&stream_bytes, base + 12, 4);
  KvqPlanes p;
  KvqSpec& s = p.spec;
  s.heads = heads;
  s.tokens = tokens;
  s.head_dim = head_dim;
  s.keys = keys;
  s.bits = base[0];
  s.sink_tokens = sinks16;
  if (s.bits < 1 || s.bits > 8) return Bad(absl::StrCat("bits ", s.bits));
  if (base[1] != 0) return Bad("reserved byte is not 0");
  if (s.sink_tokens > tokens) {
    return Bad(absl::StrCat(s.sink_tokens, " sink tokens of ", tokens));
  }
  const uint64_t dense = s.dense(), lines = s.lines(), n_levels = uint64_t{1} << s.bits;
  if (count > dense) return Bad(absl::StrCat(count, " outliers of ", dense, " elements"));
  const uint64_t n_sinks = uint64_t{heads} * s.sink_tokens * head_dim;
  const uint64_t fixed =
      4 * n_levels + 2 + lines * (keys ? 3 : 1) + 2 * n_sinks + 2 * uint64_t{count};
  if (kKvqHeaderBytes + fixed + pos_bytes + stream_bytes != payload.size()) {
    return Bad(absl::StrCat("sections add up to ", kKvqHeaderBytes + fixed + pos_bytes + stream_bytes,
                            " bytes, the payload has ", payload.size()));
  }
  if (dense > kRansMaxSymbolsPerByte * (uint64_t{stream_bytes} + 1)) {
    return Bad(absl::StrCat(dense, " codes cannot fit a ", stream_bytes, "-byte stream"));
  }
  const uint8_t* q = base + kKvqHeaderBytes;
  auto read16 = [&q](std::vector<uint16_t>* v, uint64_t n) {
    v->resize(n);
    if (n > 0) std::memcpy(v->data(), q, 2 * n);
    q += 2 * n;
  };
  std::vector<uint16_t> freqs;
  read16(&p.levels, n_levels);
  read16(&freqs, n_levels);
  uint16_t top_h;
  std::memcpy(&top_h, q, 2);
  q += 2;
  if (!HalfFinite(top_h) || (top_h & 0x8000) != 0) return Bad("top scale is negative or not finite");
  const float top = HalfBitsToFloat(top_h);
  p.scales.resize(lines);
  for (uint64_t l = 0; l < lines; ++l) p.scales[l] = LineScaleBits(top, q[l]);
  q += lines;
  if (keys) read16(&p.offsets, lines);
  read16(&p.sinks, n_sinks);
  for (uint16_t v : p.levels) {
    if (!HalfFinite(v)) return Bad("a level is not finite");
  }
  for (uint16_t v : p.offsets) {
    if (!HalfFinite(v)) return Bad("an offset is not finite");
  }
  for (uint16_t v : p.sinks) {
    if (!HalfFinite(v)) return Bad("a sink value is not finite");
  }
  const uint8_t* pos_end = q + pos_bytes;
  p.outlier_index.resize(count);
  const uint64_t elements = s.elements();
  uint64_t next = 0;  // smallest index the next outlier may have
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t delta;
    absl::string_view rest(reinterpret_cast<const char*>(q), pos_end - q);
    if (!GetVarint(&rest, &delta)) return Bad("truncated outlier position");
    q = pos_end - rest.size();
    if (next >= elements || delta >= elements - next) {
      return Bad(absl::StrCat("outlier position ", next, " + ", delta, " beyond ", elements));
    }
    const uint64_t e = next + delta;
    if ((e / head_dim) % tokens < s.sink_tokens) {
      return Bad(absl::StrCat("outlier position ", e, " in a sink token"));
    }
    p.outlier_index[i] = static_cast<uint32_t>(e);
    next = e + 1;
  }
  if (q != pos_end) return Bad("outlier positions have bytes left over");
  read16(&p.outlier_value, count);
  for (uint16_t v : p.outlier_value) {
    if (!HalfFinite(v)) return Bad("an outlier value is not finite");
  }
  std::vector<uint8_t> codes(dense);
  const absl::Status decoded = RansDecode(
      absl::string_view(reinterpret_cast<const char*>(q), stream_bytes), freqs, absl::MakeSpan(codes));
  if (!decoded.ok()) return Bad(decoded.message());
  // Every code indexes a level: rANS yields only symbols below n_levels.
  p.packed_codes.assign(KvqPackedBytes(dense, s.bits), 0);
  for (uint64_t i = 0; i < dense; ++i) {
    const uint64_t bit = i * static_cast<uint64_t>(s.bits);
    const uint32_t v = uint32_t{codes[i]} << (bit & 7);
    p.packed_codes[bit >> 3] |= static_cast<uint8_t>(v & 0xff);
    p.packed_codes[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
  }
  return p;
}

absl::Status DequantizeKvqPlanes(const KvqPlanes& p, absl::Span<float> out) {
  const KvqSpec& s = p.spec;
  if (s.bits < 1 || s.bits > 8 || s.sink_tokens > s.tokens || out.size() != s.elements() ||
      p.levels.size() != (size_t{1} << s.bits) || p.scales.size() != s.lines() ||
      p.offsets.size() != (s.keys ? s.lines() : 0) ||
      p.sinks.size() != uint64_t{s.heads} * s.sink_tokens * s.head_dim ||
      p.packed_codes.size() != KvqPackedBytes(s.dense(), s.bits) ||
      p.outlier_value.size() != p.outlier_index.size()) {
    return absl::InvalidArgumentError("kvq planes do not match their spec");
  }
  float levels[256];
  for (size_t i = 0; i < p.levels.size(); ++i) levels[i] = HalfBitsToFloat(p.levels[i]);
  const uint64_t lines = s.lines(), len = s.line_length();
  const uint32_t mask = (1u << s.bits) - 1;
  for (uint64_t l = 0; l < lines; ++l) {
    const float scale = HalfBitsToFloat(p.scales[l]);
    const float offset = s.keys ? HalfBitsToFloat(p.offsets[l]) : 0.0f;
    for (uint64_t k = 0; k < len; ++k) {
      const uint64_t bit = (l * len + k) * static_cast<uint64_t>(s.bits);
      const uint32_t word = p.packed_codes[bit >> 3] | (uint32_t{p.packed_codes[(bit >> 3) + 1]} << 8);
      out[ElementOf(s, l, k)] = DecodeCode(levels[(word >> (bit & 7)) & mask], scale, offset);
    }
  }
  for (uint64_t h = 0; h < s.heads; ++h) {
    for (uint64_t t = 0; t < s.sink_tokens; ++t) {
      for (uint64_t c = 0; c < s.head_dim; ++c) {
        out[(h * s.tokens + t) * s.head_dim + c] =
            HalfBitsToFloat(p.sinks[(h * s.sink_tokens + t) * s.head_dim + c]);
      }
    }
  }
  for (size_t i = 0; i < p.outlier_index.size(); ++i) {
    if (p.outlier_index[i] >= out.size()) {
      return absl::InvalidArgumentError("kvq outlier index beyond the tensor");
    }
    out[p.outlier_index[i]] = HalfBitsToFloat(p.outlier_value[i]);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (!(std::abs(out[i]) <= kKvqMaxMagnitude)) {
      return absl::DataLossError(
          absl::StrCat("kvq payload: value ", i, " = ", out[i], " is beyond kvq's range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mnemo::attention
