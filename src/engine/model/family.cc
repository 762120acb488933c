#include "engine/model/family.h"

#include <array>

namespace zs::engine {

// Defined in families/*.cc.
extern const ModelFamily kLlamaFamily, kQwen2Family, kQwen2MoeFamily, kQwen2VlFamily, kQwen3Family, kQwen3MoeFamily,
    kGemmaFamily, kGemma2Family, kGemma3Family, kPhi3Family, kChatglmFamily, kBertFamily, kNomicBertFamily;

namespace {
const std::array<const ModelFamily*, 13>& families() {
  static const std::array<const ModelFamily*, 13> kAll = {
      &kLlamaFamily, &kQwen2Family,  &kQwen2MoeFamily, &kQwen2VlFamily, &kQwen3Family,   &kQwen3MoeFamily, &kGemmaFamily,
      &kGemma2Family, &kGemma3Family, &kPhi3Family,     &kChatglmFamily, &kBertFamily,    &kNomicBertFamily};
  return kAll;
}
}  // namespace

const ModelFamily* find_family(std::string_view arch) {
  for (const ModelFamily* f : families())
    if (f->arch == arch) return f;
  return nullptr;
}

std::string supported_architectures() {
  std::string s;
  for (const ModelFamily* f : families()) s += (s.empty() ? "" : ", ") + std::string(f->arch);
  return s;
}

}  // namespace zs::engine
