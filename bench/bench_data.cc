// Dataset loaders and exact ground truth for the search benchmark.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_backend.h"
#include "common/status_macros.h"
#include "faiss/IndexFlat.h"
#include "faiss/impl/FaissException.h"

namespace mnemo::bench {
namespace {

uint32_t ReadBigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
         uint32_t{p[3]};
}

// Closes a gzFile on scope exit.
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

// Reads up to max_items images of an IDX3 ubyte file (gzip) as floats.
absl::Status ReadIdxImages(const std::string& path, size_t max_items, size_t* dim,
                           size_t* count, std::vector<float>* out) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  unsigned char header[16];
  if (gzread(file.get(), header, sizeof(header)) != static_cast<int>(sizeof(header))) {
    return absl::DataLossError(absl::StrCat(path, ": short IDX header"));
  }
  // Magic: two zero bytes, type 0x08 (unsigned byte), 3 dimensions.
  if (ReadBigEndian32(header) != 0x00000803u) {
    return absl::DataLossError(absl::StrCat(path, ": not an IDX3 ubyte file"));
  }
  const size_t items = ReadBigEndian32(header + 4);
  const size_t rows = ReadBigEndian32(header + 8);
  const size_t cols = ReadBigEndian32(header + 12);
  *dim = rows * cols;
  *count = std::min(items, max_items);
  std::vector<unsigned char> bytes(*count * *dim);
  size_t done = 0;
  while (done < bytes.size()) {
    const size_t chunk = std::min<size_t>(bytes.size() - done, 1 << 24);
    const int got = gzread(file.get(), bytes.data() + done, static_cast<unsigned>(chunk));
    if (got <= 0) return absl::DataLossError(absl::StrCat(path, ": truncated"));
    done += static_cast<size_t>(got);
  }
  out->assign(bytes.begin(), bytes.end());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, size_t max_base,
                                         size_t max_queries) {
  Dataset ds;
  ds.name = "fashion-mnist";
  ds.distance = Distance::kL2;
  size_t test_dim = 0;
  RETURN_IF_ERROR(ReadIdxImages(dir + "/train-images-idx3-ubyte.gz", max_base, &ds.dim,
                                &ds.num_base, &ds.base));
  RETURN_IF_ERROR(ReadIdxImages(dir + "/t10k-images-idx3-ubyte.gz", max_queries, &test_dim,
                                &ds.num_queries, &ds.queries));
  if (test_dim != ds.dim) {
    return absl::DataLossError("fashion-mnist: train and test dimensions differ");
  }
  return ds;
}

Dataset MakeSyntheticEmbeddings(size_t num_base, size_t num_queries, size_t dim,
                                uint64_t seed) {
  constexpr size_t kLatentDim = 16;
  constexpr size_t kClusters = 64;
  constexpr float kClusterSpread = 0.6f;  // latent std-dev around a centre
  constexpr float kNoise = 0.05f;         // ambient std-dev per dimension
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  std::vector<float> centres(kClusters * kLatentDim);
  for (float& c : centres) c = normal(rng);
  // mixing[d * kLatentDim + j]: weight of latent j in output dimension d.
  std::vector<float> mixing(dim * kLatentDim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kLatentDim));
  for (float& m : mixing) m = normal(rng) * scale;

  std::uniform_int_distribution<size_t> pick_cluster(0, kClusters - 1);
  auto generate = [&](size_t n, std::vector<float>* out) {
    out->resize(n * dim);
    std::vector<float> latent(kLatentDim);
    for (size_t i = 0; i < n; ++i) {
      const float* centre = &centres[pick_cluster(rng) * kLatentDim];
      for (size_t j = 0; j < kLatentDim; ++j) {
        latent[j] = centre[j] + kClusterSpread * normal(rng);
      }
      float* x = out->data() + i * dim;
      double norm2 = 0;
      for (size_t d = 0; d < dim; ++d) {
        float v = kNoise * normal(rng);
        for (size_t j = 0; j < kLatentDim; ++j) v += mixing[d * kLatentDim + j] * latent[j];
        x[d] = v;
        norm2 += double{v} * v;
      }
      const float inv = norm2 > 0 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 1.0f;
      for (size_t d = 0; d < dim; ++d) x[d] *= inv;
    }
  };

  Dataset ds;
  ds.name = "synthetic";
  ds.distance = Distance::kInnerProduct;
  ds.dim = dim;
  ds.num_base = num_base;
  ds.num_queries = num_queries;
  generate(num_base, &ds.base);
  generate(num_queries, &ds.queries);
  return ds;
}

Dataset MakeAnisotropicMixture(size_t num_base, size_t num_queries, size_t dim,
                               uint64_t seed) {
  // Tuned (bench_search --dataset aniso --engines hnswlib, 200k x 96, M 16,
  // efConstruction 200) so that hnswlib's recall@10 is well below 0.8 at
  // efSearch 16 and above 0.97 at 512; measured 0.71, 0.84, 0.93, 0.976,
  // 0.994, 0.999 at ef 16..512. With a flatter spectrum (smaller
  // kSpectrumExponent) or closer centres the set gets harder.
  constexpr size_t kClusters = 256;
  constexpr double kZipfExponent = 1.0;     // cluster c gets weight ~ 1 / (c + 1)^s
  constexpr double kSpectrumExponent = 0.6;  // eigenvalue i ~ 1 / (i + 1)^a
  constexpr double kCentreSpread = 1.0;      // centre std-dev per dim (cluster: 1 on average)
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);

  // Per cluster: centre, orthonormal basis (Gram-Schmidt of a Gaussian
  // matrix, rows are the axes), overall scale (log-normal, sd 0.3).
  std::vector<double> centres(kClusters * dim);
  std::vector<double> bases(kClusters * dim * dim);
  std::vector<double> scales(kClusters);
  std::vector<double> weights(kClusters);
  for (size_t c = 0; c < kClusters; ++c) {
    for (size_t d = 0; d < dim; ++d) centres[c * dim + d] = kCentreSpread * normal(rng);
    double* q = &bases[c * dim * dim];
    for (size_t i = 0; i < dim; ++i) {
      double* row = q + i * dim;
      for (size_t d = 0; d < dim; ++d) row[d] = normal(rng);
      for (size_t j = 0; j < i; ++j) {
        const double* prev = q + j * dim;
        double dot = 0;
        for (size_t d = 0; d < dim; ++d) dot += row[d] * prev[d];
        for (size_t d = 0; d < dim; ++d) row[d] -= dot * prev[d];
      }
      double norm = 0;
      for (size_t d = 0; d < dim; ++d) norm += row[d] * row[d];
      norm = std::sqrt(norm);
      for (size_t d = 0; d < dim; ++d) row[d] /= norm;
    }
    scales[c] = std::exp(0.3 * normal(rng));
    weights[c] = std::pow(static_cast<double>(c + 1), -kZipfExponent);
  }
  // Std-dev along a cluster's axis i: variance ~ (i + 1)^-a, scaled so that
  // the variances average 1 per dimension, like the centres' coordinates.
  std::vector<double> axis_sd(dim);
  double total = 0;
  for (size_t i = 0; i < dim; ++i) {
    axis_sd[i] = std::pow(static_cast<double>(i + 1), -kSpectrumExponent);
    total += axis_sd[i];
  }
  for (double& sd : axis_sd) sd = std::sqrt(sd / total * static_cast<double>(dim));

  std::discrete_distribution<size_t> pick_cluster(weights.begin(), weights.end());
  auto generate = [&](size_t n, std::vector<float>* out) {
    out->resize(n * dim);
    std::vector<double> z(dim);
    std::vector<double> x(dim);
    for (size_t p = 0; p < n; ++p) {
      const size_t c = pick_cluster(rng);
      for (size_t i = 0; i < dim; ++i) z[i] = scales[c] * axis_sd[i] * normal(rng);
      const double* q = &bases[c * dim * dim];
      for (size_t d = 0; d < dim; ++d) x[d] = centres[c * dim + d];
      for (size_t i = 0; i < dim; ++i) {
        const double* axis = q + i * dim;
        for (size_t d = 0; d < dim; ++d) x[d] += z[i] * axis[d];
      }
      double norm2 = 0;
      for (size_t d = 0; d < dim; ++d) norm2 += x[d] * x[d];
      const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 1.0;
      float* row = out->data() + p * dim;
      for (size_t d = 0; d < dim; ++d) row[d] = static_cast<float>(x[d] * inv);
    }
  };

  Dataset ds;
  ds.name = "aniso";
  ds.distance = Distance::kInnerProduct;
  ds.dim = dim;
  ds.num_base = num_base;
  ds.num_queries = num_queries;
  generate(num_base, &ds.base);
  generate(num_queries, &ds.queries);
  return ds;
}

absl::Status ComputeGroundTruth(Dataset* dataset, size_t k) {
  try {
    std::unique_ptr<faiss::IndexFlat> flat;
    const auto dim = static_cast<faiss::Index::idx_t>(dataset->dim);
    if (dataset->distance == Distance::kL2) {
      flat = std::make_unique<faiss::IndexFlatL2>(dim);
    } else {
      flat = std::make_unique<faiss::IndexFlatIP>(dim);
    }
    flat->add(static_cast<faiss::Index::idx_t>(dataset->num_base), dataset->base.data());
    dataset->gt_k = k;
    dataset->ground_truth.assign(dataset->num_queries * k, -1);
    std::vector<float> distances(dataset->num_queries * k);
    flat->search(static_cast<faiss::Index::idx_t>(dataset->num_queries),
                 dataset->queries.data(), static_cast<faiss::Index::idx_t>(k),
                 distances.data(), dataset->ground_truth.data());
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(absl::StrCat("ground truth: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::bench
