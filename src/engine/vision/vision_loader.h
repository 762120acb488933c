#pragma once
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/model/text_model.h"
#include "engine/vision/clip_model.h"

namespace zs::engine {

// Loads an mmproj file and checks that it projects into this text model's embedding width.
core::Result<std::unique_ptr<ClipModel>> load_vision_for(const TextModel& text, const std::string& mmproj_path);

}  // namespace zs::engine
