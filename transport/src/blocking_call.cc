// GCC 12 reports a "potential null pointer dereference" inside gRPC's call-op
// templates (grpcpp/impl/call_op_set.h) when PrepareUnaryCall is inlined: a
// false positive in gRPC's headers. This file holds only those calls, so the
// warning is silenced for them alone, before the headers are read.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "blocking_call.h"

#include <grpcpp/grpcpp.h>

namespace dtx::internal {

grpc::Status BlockingUnaryCall(grpc::GenericStub& stub,
                               grpc::ClientContext* context,
                               const std::string& method,
                               const grpc::ByteBuffer& request,
                               grpc::ByteBuffer* response) {
  grpc::CompletionQueue cq;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(context, method, request, &cq);
  call->StartCall();
  int tag = 0;
  call->Finish(response, &status, &tag);
  void* got = nullptr;
  bool ok = false;
  // The one event this queue gets: the call's end (a cancel ends it too).
  if (!cq.Next(&got, &ok)) {
    status = grpc::Status(grpc::StatusCode::CANCELLED,
                          "branch call: completion queue shut down");
  }
  cq.Shutdown();
  while (cq.Next(&got, &ok)) {
  }
  return status;
}

void StartUnaryCall(
    grpc::GenericStub& stub, grpc::ClientContext* context,
    const std::string& method, const grpc::ByteBuffer& request,
    grpc::CompletionQueue* cq,
    std::unique_ptr<grpc::GenericClientAsyncResponseReader>* reader,
    grpc::ByteBuffer* response, grpc::Status* status, void* tag) {
  *reader = stub.PrepareUnaryCall(context, method, request, cq);
  grpc::GenericClientAsyncResponseReader* call = reader->get();
  call->StartCall();
  call->Finish(response, status, tag);  // the last use: it may end at once
}

}  // namespace dtx::internal
