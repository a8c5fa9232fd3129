#include "dtx/executor.h"

namespace dtx {
namespace {

thread_local bool tls_inline_allowed = false;

}  // namespace

InlineCompletionScope::InlineCompletionScope(bool allowed)
    : outer_(tls_inline_allowed) {
  tls_inline_allowed = allowed;
}

InlineCompletionScope::~InlineCompletionScope() { tls_inline_allowed = outer_; }

bool InlineCompletionAllowed() { return tls_inline_allowed; }

}  // namespace dtx
