#pragma once
// Fetches remote images named by `image_url` on behalf of workers (which have no network).
#include <string>

#include "core/status.h"

namespace zs::gateway {

struct FetchedImage {
  std::string bytes;
  std::string mime_type;
};

class ImageFetcher {
 public:
  virtual ~ImageFetcher() = default;
  virtual core::Result<FetchedImage> fetch(const std::string& url) = 0;
};

}  // namespace zs::gateway
