// Umbrella header: everything a host needs from dtx::core.

#ifndef DTX_DTX_H_
#define DTX_DTX_H_

#include "dtx/alert_sink.h"
#include "dtx/branch_client.h"
#include "dtx/branch_targets.h"
#include "dtx/clock.h"
#include "dtx/coordinator.h"
#include "dtx/dtm_api.h"
#include "dtx/event_loop.h"
#include "dtx/id_generator.h"
#include "dtx/journal.h"
#include "dtx/limits.h"
#include "dtx/logger.h"
#include "dtx/metrics.h"
#include "dtx/model.h"
#include "dtx/options.h"
#include "dtx/result.h"
#include "dtx/routing_branch_client.h"
#include "dtx/server_metrics.h"
#include "dtx/status.h"
#include "dtx/transaction.h"
#include "dtx/version.h"
#include "dtx/workflow.h"

#endif  // DTX_DTX_H_
