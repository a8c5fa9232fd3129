#include "dtx/executor.h"

namespace dtx {
namespace {

thread_local InlineOffer tls_inline_offer = InlineOffer::kNone;

}  // namespace

InlineCompletionScope::InlineCompletionScope(InlineOffer offer)
    : outer_(tls_inline_offer) {
  tls_inline_offer = offer;
}

InlineCompletionScope::InlineCompletionScope(bool idle)
    : InlineCompletionScope(idle ? InlineOffer::kIdle : InlineOffer::kNone) {}

InlineCompletionScope::~InlineCompletionScope() { tls_inline_offer = outer_; }

InlineOffer InlineCompletionOffered() { return tls_inline_offer; }

bool InlineCompletionAllowed() {
  return tls_inline_offer == InlineOffer::kIdle;
}

}  // namespace dtx
