#include "decoder/model_dir.h"

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "openssl/evp.h"

namespace mnemo::decoder {

absl::StatusOr<std::string> FileSha256Hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("cannot initialise SHA-256");
  }
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

absl::StatusOr<LoadedModel> LoadModelDir(const std::string& dir) {
  LoadedModel out;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(dir);
  if (!model.ok()) return model.status();
  out.model = *std::move(model);
  const std::string tok_path =
      (std::filesystem::path(dir) / out.model->config().tokenizer).string();
  // The tokenizer is part of the model's fingerprint: a tokenizer file other
  // than the one the weights were trained with would silently change every
  // token id (and so every stored KV block), so it is refused.
  absl::StatusOr<std::string> digest = FileSha256Hex(tok_path);
  if (!digest.ok()) return digest.status();
  if (*digest != out.model->config().tokenizer_sha256) {
    return absl::FailedPreconditionError(
        absl::StrCat("tokenizer ", tok_path, " has sha256 ", *digest, " but config.json says ",
                     out.model->config().tokenizer_sha256, " (tokenizer_sha256)"));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadSentencePieceTokenizer(tok_path);
  if (!tok.ok()) return tok.status();
  out.tokenizer = *std::move(tok);
  if (out.tokenizer->vocab_size() != out.model->config().vocab_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("tokenizer ", tok_path, " has ", out.tokenizer->vocab_size(),
                     " pieces but the model's vocabulary is ", out.model->config().vocab_size));
  }
  return out;
}

absl::StatusOr<std::string> WeightsSha256(const Model& model) {
  return FileSha256Hex((std::filesystem::path(model.dir()) / model.config().weights).string());
}

}  // namespace mnemo::decoder
