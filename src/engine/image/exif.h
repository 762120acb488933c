#pragma once
// EXIF orientation: phones store photos as the sensor saw them and record in EXIF tag 0x0112
// how to turn them upright. Parsed here by hand (a TIFF header and one IFD) because that is all
// that is needed; every offset is bounds-checked and anything malformed reads as "no rotation".
#include <cstddef>
#include <cstdint>

#include "engine/image/image.h"

namespace zs::engine {

// The orientation (1-8) recorded in a TIFF/EXIF block ("II*\0" or "MM\0*" header, either byte
// order), or 1 when it has none or is malformed. A leading "Exif\0\0" is skipped.
int exif_orientation(const uint8_t* tiff, size_t size);

// Turns a decoded image upright for an EXIF orientation: 2 mirrors left-right, 3 rotates 180°,
// 4 mirrors top-bottom, 5 transposes, 6 rotates 90° clockwise, 7 transverses, 8 rotates 90°
// counter-clockwise (the same transforms as PIL's ImageOps.exif_transpose). Values outside
// 2-8 return the image unchanged.
Image apply_exif_orientation(Image image, int orientation);

}  // namespace zs::engine
