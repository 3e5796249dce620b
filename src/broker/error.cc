#include "broker/error.h"

namespace warren::broker {

std::string_view error_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound: return "NOT_FOUND";
    case ErrorCode::kAccessRefused: return "ACCESS_REFUSED";
    case ErrorCode::kResourceLocked: return "RESOURCE_LOCKED";
    case ErrorCode::kPreconditionFailed: return "PRECONDITION_FAILED";
    case ErrorCode::kNotAllowed: return "NOT_ALLOWED";
    case ErrorCode::kCommandInvalid: return "COMMAND_INVALID";
    case ErrorCode::kNotImplemented: return "NOT_IMPLEMENTED";
    case ErrorCode::kResourceError: return "RESOURCE_ERROR";
    case ErrorCode::kInternalError: return "INTERNAL_ERROR";
  }
  return "INTERNAL_ERROR";
}

}  // namespace warren::broker
