// A unary call whose completion the calling thread takes itself, and one
// whose completion goes to a completion queue of the caller's.
#ifndef DTX_TRANSPORT_SRC_BLOCKING_CALL_H_
#define DTX_TRANSPORT_SRC_BLOCKING_CALL_H_

#include <grpcpp/generic/generic_stub.h>

#include <memory>
#include <string>

namespace dtx::internal {

// Calls `method` on `stub` and waits on a completion queue of the caller's
// own, as gRPC's generated blocking stubs do: no gRPC thread wakes up to hand
// the answer over. `context` may be cancelled from another thread
// (TryCancel) meanwhile.
grpc::Status BlockingUnaryCall(grpc::GenericStub& stub,
                               grpc::ClientContext* context,
                               const std::string& method,
                               const grpc::ByteBuffer& request,
                               grpc::ByteBuffer* response);

// Starts `method` on `stub`, the call's reader in `*reader` (set before the
// call can end, so that it may live in the state the completion frees):
// when the call ends, `*response` and `*status` are set and `tag` comes out
// of `cq`. Nothing the call owns is touched after that.
void StartUnaryCall(
    grpc::GenericStub& stub, grpc::ClientContext* context,
    const std::string& method, const grpc::ByteBuffer& request,
    grpc::CompletionQueue* cq,
    std::unique_ptr<grpc::GenericClientAsyncResponseReader>* reader,
    grpc::ByteBuffer* response, grpc::Status* status, void* tag);

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_SRC_BLOCKING_CALL_H_
