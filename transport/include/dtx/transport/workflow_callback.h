// The workflow resume callback a C++ application serves when its workflows
// (dtx::Workflows) are recorded by a remote coordinator (dtx-server, or dtm):
// dtm's gRPC service workflow.Workflow/Execute, which the coordinator calls
// with dtm-op (the workflow's name), dtm-gid and WorkflowData{Data: input}.
// The workflow runs on the Workflows' threads; the call is answered with its
// outcome in dtm's classes (OK, ABORTED for FAILURE, FAILED_PRECONDITION for
// ONGOING, UNAVAILABLE otherwise).
//
//   dtx::Workflows::Options o;
//   o.callback_url = "10.0.0.5:50051/workflow.Workflow/Execute";
//   dtx::Workflows workflows(*remote_dtm, o);
//   auto callback = dtx::NewWorkflowCallbackService(workflows);
//   builder.RegisterService(callback.get());  // grpc::ServerBuilder
//
// The service must outlive the server it is registered with; `workflows`
// must outlive the service.
//
// Thread safety: thread-safe (gRPC calls it on its threads).

#ifndef DTX_TRANSPORT_WORKFLOW_CALLBACK_H_
#define DTX_TRANSPORT_WORKFLOW_CALLBACK_H_

#include "dtx/transport/grpc_export.h"
#include "dtx/workflow.h"

#include <memory>

// gRPC's grpc::Service (<grpcpp/impl/service_type.h>, which the caller
// includes with its server: no gRPC header in dtx's public headers).
namespace grpc {
class Service;
}  // namespace grpc

namespace dtx {

DTX_GRPC_EXPORT std::unique_ptr<grpc::Service> NewWorkflowCallbackService(
    Workflows& workflows);

}  // namespace dtx

#endif  // DTX_TRANSPORT_WORKFLOW_CALLBACK_H_
