// workflow.Workflow/Execute for dtx::Workflows (workflow_callback.h): reads
// dtm's metadata, hands the resume to the Workflows' threads, and answers
// the call from there.

#include "dtx/transport/workflow_callback.h"

#include "dtm/wf.grpc.pb.h"
#include "dtm_proto.h"

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

namespace dtx {
namespace {

// The first value of metadata `key`, or "".
std::string Metadata(const grpc::CallbackServerContext& context,
                     const char* key) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? std::string()
                        : std::string(it->second.data(), it->second.size());
}

class WorkflowCallback final : public workflow::Workflow::CallbackService {
 public:
  explicit WorkflowCallback(Workflows& workflows) : workflows_(workflows) {}

  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* context,
                                    const workflow::WorkflowData* request,
                                    google::protobuf::Empty*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::string name = Metadata(*context, "dtm-op");
    std::string gid = Metadata(*context, "dtm-gid");
    if (name.empty() || gid.empty()) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "workflow callback: the call carries no dtm-op (the workflow's "
          "name) or dtm-gid metadata"));
      return reactor;
    }
    workflows_.ResumeAsync(
        std::move(name), std::move(gid), request->data(),
        [reactor](Status s) { reactor->Finish(internal::ToGrpcStatus(s)); });
    return reactor;
  }

 private:
  Workflows& workflows_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWorkflowCallbackService(
    Workflows& workflows) {
  return std::make_unique<WorkflowCallback>(workflows);
}

}  // namespace dtx
