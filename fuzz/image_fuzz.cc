// libFuzzer target: any byte string given to the image decoder must produce an image or a clear
// error, never a crash, a hang or an allocation beyond what the limits allow. The limits are
// lowered so that inputs claiming large canvases are refused instead of exhausting the fuzzer's
// memory, and what decodes is pushed through the preprocessing too.
#include <cstddef>
#include <cstdint>

#include "engine/image/image.h"
#include "engine/image/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zs::engine::ImageLimits limits;
  limits.max_pixels = 4'000'000;
  limits.max_bytes = 16 << 20;
  auto image = zs::engine::decode_image(data, size, limits);
  if (!image) return 0;
  const zs::engine::Image& img = image.value();
  if (img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3) __builtin_trap();
  (void)zs::engine::preprocess_llava(img, 28, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  (void)zs::engine::split_image(img, {.tile_size = 32, .longest_edge = 96});
  return 0;
}
