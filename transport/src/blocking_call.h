// A unary call whose completion the calling thread takes itself.
#ifndef DTX_TRANSPORT_SRC_BLOCKING_CALL_H_
#define DTX_TRANSPORT_SRC_BLOCKING_CALL_H_

#include <grpcpp/generic/generic_stub.h>

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

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_SRC_BLOCKING_CALL_H_
