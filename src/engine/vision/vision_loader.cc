#include "engine/vision/vision_loader.h"

namespace zs::engine {

core::Result<std::unique_ptr<ClipModel>> load_vision_for(const TextModel& text, const std::string& mmproj_path) {
  auto clip = ClipModel::load(mmproj_path);
  if (!clip) return clip.status();
  const int proj = clip.value()->config().projection_dim;
  if (proj != text.config().n_embd)
    return core::Status::error("vision projector '" + mmproj_path + "' produces embeddings of width " +
                               std::to_string(proj) + " but the text model's width is " +
                               std::to_string(text.config().n_embd) + ": they do not belong together");
  return clip;
}

}  // namespace zs::engine
