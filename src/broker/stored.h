// A metadata-store failure as a broker error: the definition change it was for did not happen.
#pragma once

#include "broker/error.h"
#include "store/metadata_store.h"

namespace warren::broker {

inline Status stored(const store::Status& s) {
  if (!s) return std::nullopt;
  return make_error(ErrorCode::kInternalError, "cannot store definitions: {}", s->message);
}

}  // namespace warren::broker
